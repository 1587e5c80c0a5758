"""The training text: byte-level tokens from files, split into train and validation by file.

By default the corpus is the source code of the Python standard library on this machine: real
text, megabytes of it, with nothing to download. The split is by file, fixed by a hash of each
file's path (not by the seed), so that every rung and every re-run validates on the same held-out
files and validation loss never sees text the model trained on.
"""

from __future__ import annotations

import hashlib
import sysconfig
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaleguard.errors import ConfigError

__all__ = ["Corpus", "load_corpus", "stdlib_root"]

_SKIP_PARTS = {"site-packages", "dist-packages", "__pycache__"}  # installed packages, not stdlib


def stdlib_root() -> Path:
    """Folder of the Python standard library of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


@dataclass(frozen=True)
class Corpus:
    """Train and validation bytes (``uint8`` arrays) and where they came from."""

    train: np.ndarray
    val: np.ndarray
    train_files: int
    val_files: int
    source: str
    digest: str  # sha256 of both splits: two runs on the same corpus agree on it

    def as_dict(self) -> dict[str, Any]:
        return {"train_bytes": int(self.train.size), "val_bytes": int(self.val.size),
                "train_files": self.train_files, "val_files": self.val_files,
                "source": self.source, "digest": self.digest}

    def __repr__(self) -> str:
        return (f"Corpus({self.source}: {self.train.size:,} train bytes in {self.train_files} "
                f"files, {self.val.size:,} validation bytes in {self.val_files} files)")


def _files(paths: Sequence[str | Path], suffixes: Sequence[str]) -> list[tuple[str, Path]]:
    """(key, path) of every text file under ``paths``; the key (relative path) drives the split."""
    found: list[tuple[str, Path]] = []
    for given in paths:
        root = Path(given)
        if root.is_file():
            found.append((root.name, root))
        elif root.is_dir():
            for suffix in suffixes:
                for path in root.rglob(f"*{suffix}"):
                    relative = path.relative_to(root)
                    if not _SKIP_PARTS & set(relative.parts) and path.is_file():
                        found.append((relative.as_posix(), path))
        else:
            raise ConfigError(f"corpus.paths: {given}: no such file or folder")
    return list(dict(found).items())  # a file matched by two suffixes counts once


def _bucket(key: str) -> float:
    """A fixed pseudo-random number in [0, 1) for a file, from its relative path.

    Independent of the reading order (which uses crc32), so that validation files are spread
    over the whole order rather than being its head.
    """
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def load_corpus(paths: Sequence[str | Path] = (), *, suffixes: Sequence[str] = (".py",),
                max_bytes: float = 8e6, val_fraction: float = 0.05) -> Corpus:
    """Read files into byte arrays, up to ``max_bytes``, holding out ``val_fraction`` by file.

    Files are taken in a fixed pseudo-random order (by the hash of their relative path), so that
    a capped corpus samples the whole tree rather than its alphabetical head; a file whose hash
    falls below ``val_fraction`` goes to validation.

    >>> corpus = load_corpus(max_bytes=2e5)
    >>> corpus.train.dtype, corpus.val.size > 0, corpus.train.size + corpus.val.size <= 2e5 + 1e5
    (dtype('uint8'), True, True)
    """
    roots = list(paths) or [stdlib_root()]
    files = sorted(_files(roots, suffixes), key=lambda item: (zlib.crc32(item[0].encode()),
                                                              item[0]))
    if not files:
        raise ConfigError(f"corpus.paths: no files ending in {', '.join(suffixes)} under "
                          f"{', '.join(map(str, roots))}")
    budget = {"train": max_bytes * (1 - val_fraction), "val": max_bytes * val_fraction}
    chunks: dict[str, list[bytes]] = {"train": [], "val": []}
    filled = {"train": 0, "val": 0}
    for key, path in files:
        split = "val" if _bucket(key) < val_fraction else "train"
        if filled[split] >= budget[split]:
            if all(filled[s] >= budget[s] for s in filled):
                break
            continue
        data = path.read_bytes()
        chunks[split].append(data)
        filled[split] += len(data)
    if not chunks["val"] or not chunks["train"]:
        raise ConfigError(f"corpus: {len(files)} files are too few to hold out "
                          f"{val_fraction:.0%} by file; add files or raise corpus.val_fraction")
    # Files are joined with a blank line; the model sees file boundaries as ordinary text.
    train = np.frombuffer(b"\n\n".join(chunks["train"]), dtype=np.uint8)
    val = np.frombuffer(b"\n\n".join(chunks["val"]), dtype=np.uint8)
    digest = hashlib.sha256(train.tobytes() + b"\0" + val.tobytes()).hexdigest()[:12]
    source = "python-stdlib" if not paths else ", ".join(map(str, paths))
    return Corpus(train=train, val=val, train_files=len(chunks["train"]),
                  val_files=len(chunks["val"]), source=source, digest=digest)
