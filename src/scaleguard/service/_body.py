"""Strict JSON bodies: a duplicate key, a NaN or Infinity literal, or nesting past the
recursion limit is refused with a 422 naming it, before any field is validated.

Python's ``json`` keeps the last of two equal keys (``{"events": 1, "events": 900}`` is 900
events, silently) and reads ``NaN`` and ``Infinity``, which JSON does not have (RFC 8259
sec. 6); a body nested 100,000 brackets deep raises RecursionError, which FastAPI answers with a
400 that names nothing. Routers opt in with ``route_class=StrictJSONRoute``; the body is parsed
once, by the hooks below, not twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from scaleguard.io import shown

__all__ = ["StrictJSONRoute", "parse_strict_json"]


def _refuse(message: str) -> HTTPException:
    return HTTPException(422, f"body: {message}")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # rare: find which key, for the message
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _refuse(f"key {shown(key)} appears twice in one object; give each field "
                              "once")
            seen.add(key)
    return out


def _constant(name: str) -> Any:
    raise _refuse(f"{name} is not a JSON number (RFC 8259); leave the field out or send "
                  "a finite number")


def parse_strict_json(body: bytes) -> Any:
    """``body`` parsed as strict JSON, or an HTTPException(422) saying what is wrong.

    >>> parse_strict_json(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> parse_strict_json(b'{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 422: body: key 'a' appears twice in one object; give \
each field once
    """
    try:
        return json.loads(body, object_pairs_hook=_object, parse_constant=_constant)
    except RecursionError:
        raise _refuse("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise _refuse(f"byte {exc.start} is not UTF-8 (nor UTF-16/32); send JSON as UTF-8"
                      ) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body is parsed by :func:`parse_strict_json`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict
