"""JSON answers that survive NaN and infinity (JSON has neither; we spell them as strings)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from scaleguard.io import jsonable

__all__ = ["SafeJSONResponse", "jsonable"]


class SafeJSONResponse(JSONResponse):
    """A JSONResponse that never fails on NaN or infinity."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")
        except ValueError:  # a NaN somewhere deep: walk it only when needed (rare)
            return json.dumps(jsonable(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"), default=str).encode("utf-8")
