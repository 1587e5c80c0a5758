"""JSON answers that survive NaN and infinity (JSON has neither; we spell them as strings)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse

__all__ = ["SafeJSONResponse", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name, recursively.

    Examples
    --------
    >>> jsonable({"loss": [1.5, float("nan")], "peak": float("inf")})
    {'loss': [1.5, 'nan'], 'peak': 'inf'}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """A JSONResponse that never fails on NaN or infinity."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except ValueError:  # a NaN somewhere deep: walk it only when needed (rare)
            return json.dumps(jsonable(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"), default=str).encode("utf-8")
