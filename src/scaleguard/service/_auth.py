"""Bearer tokens: hashed at rest and at load, compared in constant time.

A token file holds one entry a line: either ``sha256:<64 hex digits>`` (the digest of a token,
what we recommend keeping on disk; make one with :func:`hash_token`) or a plain token, which is
hashed as it is read, optionally preceded by a name and a space (``alice sha256:...``): the
name is who the audit log says approved a rollout stage with that token (an unnamed token is
``token <first 8 hex digits of its digest>``). Blank lines and lines starting with ``#`` are
skipped. The service keeps
only digests in memory, and checks a presented token against every digest with
:func:`hmac.compare_digest`, so that neither the match nor its position leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scaleguard.errors import ConfigError

__all__ = ["MIN_TOKEN_CHARS", "TokenFile", "check_token", "hash_token", "load_tokens",
           "new_token", "read_token_file", "token_identity", "token_line"]

# 16 url-safe base64 characters carry 96 bits; OWASP's session management cheat sheet asks for
# at least 64 bits of entropy in a bearer secret.
MIN_TOKEN_CHARS = 16
_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
# A name as people write it in an audit log: a login, an e-mail address, a team's name.
_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._@+-]{0,63})\s+(\S+)$")


def hash_token(token: str) -> str:
    """The line to keep in a token file for ``token``: ``sha256:`` and its hex digest.

    Examples
    --------
    >>> hash_token("correct-horse-battery-staple")[:15]
    'sha256:87cbebfe'
    """
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_line(hashed: str, name: str | None = None) -> str:
    """A token file's line for ``hashed`` (a :func:`hash_token` value), named if ``name``.

    Examples
    --------
    >>> token_line("sha256:" + "0" * 64, "alice")[:13]
    'alice sha256:'
    >>> token_line("sha256:" + "0" * 64, "two words")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    scaleguard.errors.ConfigError: name: 'two words' is not a token name; expected a letter ...
    """
    if name is None:
        return hashed
    if not _NAMED.match(f"{name} {hashed}"):
        raise ConfigError(f"name: {name!r} is not a token name; expected a letter or digit, then "
                          "up to 63 of letters, digits and . _ @ + -")
    return f"{name} {hashed}"


def new_token() -> str:
    """A fresh random token (32 bytes from :mod:`secrets`, url-safe base64)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenFile:
    """A token file read: the digests it allows and the names given to some of them."""

    digests: tuple[bytes, ...]
    names: Mapping[bytes, str] = field(default_factory=dict)


def read_token_file(path: Path) -> TokenFile:
    """Read a token file: the SHA-256 digests of the tokens it allows, and their names.

    Raises
    ------
    ConfigError
        When the file cannot be read, holds no token, a plain token is shorter than
        :data:`MIN_TOKEN_CHARS`, or a name is given twice (the message names the line, never
        the token).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the token file ({exc.__class__.__name__})") from exc
    digests: list[bytes] = []
    names: dict[bytes, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        named = _NAMED.match(line)
        name, line = (named.group(1), named.group(2)) if named else (None, line)
        hashed = _HASHED.match(line)
        if hashed:
            digest = bytes.fromhex(hashed.group(1))
        elif line.startswith("sha256:"):
            raise ConfigError(f"{path}: line {number}: expected sha256: and 64 hex digits")
        elif len(line) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{path}: line {number}: token too short, expected at least "
                              f"{MIN_TOKEN_CHARS} characters")
        else:
            digest = hashlib.sha256(line.encode("utf-8")).digest()
        if name is not None:
            if name in names.values():
                raise ConfigError(f"{path}: line {number}: name {name!r} is given to another "
                                  "token already; one name a token, so the audit log is clear")
            names[digest] = name
        digests.append(digest)
    if not digests:
        raise ConfigError(f"{path}: no token in the file; expected one token or sha256: hash "
                          "a line")
    return TokenFile(tuple(digests), names)


def load_tokens(path: Path) -> tuple[bytes, ...]:
    """The SHA-256 digests of the tokens a token file allows (see :func:`read_token_file`)."""
    return read_token_file(path).digests


def token_identity(presented: str, names: Mapping[bytes, str]) -> str:
    """Who a (valid) token is: its name in the token file, else ``token`` and the first 8 hex
    digits of its digest (enough to tell tokens apart, useless to forge one).

    Examples
    --------
    >>> token_identity("a-long-enough-token", {})
    'token 34e91a16'
    """
    digest = hashlib.sha256(presented.encode("utf-8")).digest()
    return names.get(digest) or f"token {digest.hex()[:8]}"


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
