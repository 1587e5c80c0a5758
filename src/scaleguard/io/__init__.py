"""Reading tables: CSV, TSV, Parquet or JSONL into pandas, checked row by row.

Every check names the file and the row (and its line in the file) at fault, so that a user with a
thousand-row ladder finds the bad cell at once.
"""

from scaleguard.io._boundary import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    MAX_TEXT_BYTES,
    MAX_VALUES,
    as_finite,
    as_step,
    check_document,
    document_problem,
    dumps_json,
    jsonable,
    load_json,
    load_yaml,
    read_text,
    shown,
    text_problem,
)
from scaleguard.io._config import read_yaml, validate_config, yaml_path
from scaleguard.io._ladder import (
    FLOPS_PER_PARAM_TOKEN,
    LADDER_COLUMNS,
    TableSummary,
    prepare_ladder,
    read_ladder,
    read_scale_table,
    summarize_table,
)
from scaleguard.io._tables import (
    FORMATS,
    NumericColumn,
    check_numeric,
    missing_column_error,
    parse_column_map,
    read_table,
)

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_TEXT_BYTES",
    "MAX_VALUES",
    "as_finite",
    "as_step",
    "check_document",
    "document_problem",
    "dumps_json",
    "jsonable",
    "load_json",
    "load_yaml",
    "read_text",
    "shown",
    "text_problem",
    "FLOPS_PER_PARAM_TOKEN",
    "FORMATS",
    "LADDER_COLUMNS",
    "NumericColumn",
    "TableSummary",
    "check_numeric",
    "missing_column_error",
    "parse_column_map",
    "prepare_ladder",
    "read_ladder",
    "read_scale_table",
    "read_table",
    "read_yaml",
    "summarize_table",
    "validate_config",
    "yaml_path",
]
