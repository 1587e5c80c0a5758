"""FastAPI dependencies that let a request through only with a valid bearer token."""

from __future__ import annotations

from fastapi import HTTPException, Request

from scaleguard.service._auth import check_token, token_identity

__all__ = ["identity", "require_read", "require_write"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scaleguard"'}


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _presented(request: Request) -> str:
    token = _bearer(request)
    if token is None:
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer TOKEN'",
                            headers=_CHALLENGE)
    return token


def _check(request: Request) -> None:
    token = _presented(request)
    if not check_token(token, request.app.state.settings.token_hashes):
        # RFC 6750 sec. 3.1: an unknown token is invalid_token, answered with 401 as well.
        raise HTTPException(401, "invalid bearer token", headers=_CHALLENGE)


def require_write(request: Request) -> None:
    """Every write needs a token from the token file."""
    _check(request)


def require_read(request: Request) -> None:
    """Reads need a token too, unless the service was started with open reads."""
    if not request.app.state.settings.open_reads:
        _check(request)


def identity(request: Request) -> str:
    """Who sent a write (after :func:`require_write` let it through): the token's name."""
    return token_identity(_presented(request), request.app.state.settings.token_names)
