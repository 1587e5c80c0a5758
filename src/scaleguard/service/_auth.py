"""Bearer tokens: hashed at rest and at load, compared in constant time.

A token file holds one entry a line: either ``sha256:<64 hex digits>`` (the digest of a token,
what we recommend keeping on disk; make one with :func:`hash_token`) or a plain token, which is
hashed as it is read. Blank lines and lines starting with ``#`` are skipped. The service keeps
only digests in memory, and checks a presented token against every digest with
:func:`hmac.compare_digest`, so that neither the match nor its position leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from scaleguard.errors import ConfigError

__all__ = ["MIN_TOKEN_CHARS", "check_token", "hash_token", "load_tokens", "new_token"]

# 16 url-safe base64 characters carry 96 bits; OWASP's session management cheat sheet asks for
# at least 64 bits of entropy in a bearer secret.
MIN_TOKEN_CHARS = 16
_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def hash_token(token: str) -> str:
    """The line to keep in a token file for ``token``: ``sha256:`` and its hex digest.

    Examples
    --------
    >>> hash_token("correct-horse-battery-staple")[:15]
    'sha256:87cbebfe'
    """
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (32 bytes from :mod:`secrets`, url-safe base64)."""
    return secrets.token_urlsafe(32)


def load_tokens(path: Path) -> tuple[bytes, ...]:
    """Read a token file and return the SHA-256 digests of the tokens it allows.

    Raises
    ------
    ConfigError
        When the file cannot be read, holds no token, or a plain token is shorter than
        :data:`MIN_TOKEN_CHARS` (the message names the line, never the token).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the token file ({exc.__class__.__name__})") from exc
    digests: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        hashed = _HASHED.match(line)
        if hashed:
            digests.append(bytes.fromhex(hashed.group(1)))
        elif line.startswith("sha256:"):
            raise ConfigError(f"{path}: line {number}: expected sha256: and 64 hex digits")
        elif len(line) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{path}: line {number}: token too short, expected at least "
                              f"{MIN_TOKEN_CHARS} characters")
        else:
            digests.append(hashlib.sha256(line.encode("utf-8")).digest())
    if not digests:
        raise ConfigError(f"{path}: no token in the file; expected one token or sha256: hash "
                          "a line")
    return tuple(digests)


def check_token(presented: str | None, digests: Iterable[bytes]) -> bool:
    """Whether ``presented`` is one of the tokens whose digests are given, in constant time.

    Examples
    --------
    >>> digests = (bytes.fromhex(hash_token("a-long-enough-token")[7:]),)
    >>> check_token("a-long-enough-token", digests), check_token("guess", digests)
    (True, False)
    """
    if not presented:
        return False
    candidate = hashlib.sha256(presented.encode("utf-8")).digest()
    matched = False
    for digest in digests:  # no early exit: every digest is compared every time
        matched |= hmac.compare_digest(candidate, digest)
    return matched
