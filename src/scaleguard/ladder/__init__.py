"""Run a real scaling ladder: small GPTs trained, measured, recorded, fitted and extrapolated.

Needs the ``ladder`` extra (PyTorch): ``pip install 'scaleguard[ladder]'``. Importing this package
imports torch, so the core and the CLI import it only inside the ``scaleguard ladder`` commands.

Write a spec, run it, fit the table, predict the next rung — and then run that rung to see::

    spec = load_spec("ladder.yaml")
    result = run_ladder(spec, "ladder-out", executor="ray")
    forecast = forecast_rung(read_ladder(result.table), spec, spec.next_rung())
"""

from scaleguard.ladder._corpus import Corpus, load_corpus, stdlib_root
from scaleguard.ladder._model import GPT, GPTConfig
from scaleguard.ladder._predict import (
    CostForecast,
    RungForecast,
    forecast_cost,
    forecast_rung,
    planned_size,
)
from scaleguard.ladder._runner import LadderResult, RungJob, run_ladder, run_rungs, rung_executor
from scaleguard.ladder._shape import VOCAB_SIZE, gpt_shape, non_embedding_params
from scaleguard.ladder._spec import (
    CHINCHILLA_TOKENS_PER_PARAM,
    CorpusSpec,
    LadderSpec,
    ModelSpec,
    OptimizerSpec,
    RungSpec,
    load_spec,
)
from scaleguard.ladder._table import TABLE_COLUMNS, TABLE_NAME, read_records, write_table
from scaleguard.ladder._train import RungResult, lr_at, rung_steps, train_rung

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "GPT",
    "TABLE_COLUMNS",
    "TABLE_NAME",
    "VOCAB_SIZE",
    "Corpus",
    "CorpusSpec",
    "CostForecast",
    "GPTConfig",
    "LadderResult",
    "LadderSpec",
    "ModelSpec",
    "OptimizerSpec",
    "RungForecast",
    "RungJob",
    "RungResult",
    "RungSpec",
    "forecast_cost",
    "forecast_rung",
    "gpt_shape",
    "load_corpus",
    "load_spec",
    "lr_at",
    "non_embedding_params",
    "planned_size",
    "read_records",
    "rung_executor",
    "rung_steps",
    "run_ladder",
    "run_rungs",
    "stdlib_root",
    "train_rung",
    "write_table",
]
