"""A throwaway PostgreSQL cluster for the tests and benchmarks, started as a user would.

``initdb`` a fresh data folder, ``pg_ctl start`` it on a free loopback port, hand out fresh
databases, ``pg_ctl stop`` and delete the folder at the end. PostgreSQL refuses to run as root
(CI runs as root), so as root the cluster runs as the ``postgres`` user that Debian's package
creates (through ``runuser``). Binaries are looked up on ``$PATH``, then in Debian's
``/usr/lib/postgresql/<version>/bin``; :func:`find_bindir` returns None where there are none
and the tests that need a cluster skip, saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["Cluster", "find_bindir"]

_USER = "scaleguard"  # the cluster's superuser (trust authentication on loopback only)


def find_bindir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``, or None."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                    else 0)
    return debian[-1].parent if debian else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One PostgreSQL server in a temporary folder; :meth:`database` makes a fresh database.

    ``durable=False`` (tests) turns off fsync: the tests kill service replicas, never the
    database, and a test cluster need not survive a power cut. Benchmarks keep it on.
    """

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="sgpg-"))
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # Debian's package makes this user
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> Cluster:
        data = self.root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", _USER, "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        settings = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                    "-c max_connections=300"]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off",
                         "-c full_page_writes=off"]
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"),
                  "-w", "-t", "60", "-o", " ".join(settings), "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
