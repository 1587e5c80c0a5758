"""Error answers: one line saying what is wrong, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from scaleguard.errors import ScaleguardError, StateConflict
from scaleguard.io import shown

__all__ = ["NotFound", "install_error_handlers", "validation_message"]

log = logging.getLogger("scaleguard.service")


class NotFound(ScaleguardError):
    """A run, series or rollout named in the request does not exist (answered with 404)."""


def validation_message(errors: list[dict]) -> str:
    """One line naming each invalid field by its path and what was expected.

    Examples
    --------
    >>> validation_message([{"loc": ("body", "points", 0, "value"),
    ...                      "msg": "Input should be a valid number"}])
    'body.points.0.value: Input should be a valid number'
    """
    parts = []
    for error in errors[:5]:  # the first few are enough to fix a request; the rest follow
        loc = list(error.get("loc", ()))
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":  # loc is ("body", character position)
            where, msg = "body", f"not valid JSON (at character {loc[-1] if loc else 0})"
        else:
            # A key of the client's may hold a newline: shown escaped, the answer one line.
            where = ".".join(str(part) if str(part).isprintable() else shown(str(part))
                             for part in loc) or "body"
        parts.append(f"{where}: {msg}" if msg.isprintable() else f"{where}: {shown(msg, 200)}")
    more = len(errors) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    """Map validation and input errors to 422 (unknown names to 404, a request the target's
    state does not allow now to 409), exhausted stack or memory to 422/413, and anything else
    to a bare 500.

    422 for every refusal of what a client sent (a schema field, a rollout row, a plan): the
    same status whether pydantic or scaleguard's own checks found the problem, so clients and
    the fuzz suite can rely on one code for "fix your request"."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse(status_code=422,
                            content={"error": validation_message(errors), "detail": errors})

    @app.exception_handler(NotFound)
    async def _missing(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": str(exc)})

    @app.exception_handler(StateConflict)
    async def _conflict(request: Request, exc: StateConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"error": str(exc)})

    @app.exception_handler(ScaleguardError)
    async def _bad_input(request: Request, exc: ScaleguardError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # The net under the schemas' depth limit (scaleguard.io's MAX_DEPTH): still the
        # client's input, still answered with a 4xx.
        return JSONResponse(status_code=422, content={"error": "body: nested too deeply"})

    @app.exception_handler(MemoryError)
    async def _too_large(request: Request, exc: MemoryError) -> JSONResponse:
        return JSONResponse(status_code=413, content={"error": "request too large to process"})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # The trace goes to the server's log only; the client learns that it was our fault.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"error": "internal server error"})
