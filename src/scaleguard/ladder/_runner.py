"""Run a ladder: every rung trained (here, on local processes or as Ray tasks), logged through
``scaleguard.monitor``, recorded as it finishes, and gathered into the ladder table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleguard.compute import Executor, Progress, SerialExecutor, get_executor
from scaleguard.errors import ConfigError
from scaleguard.ladder._corpus import Corpus, load_corpus
from scaleguard.ladder._spec import CorpusSpec, LadderSpec, RungSpec
from scaleguard.ladder._table import RECORDS_DIR, read_records, write_record, write_table
from scaleguard.ladder._train import RungResult, train_rung

__all__ = ["LadderResult", "RungJob", "run_ladder", "run_rungs", "rung_executor",
           "RUNS_DIR", "CHECKPOINTS_DIR"]

RUNS_DIR = "runs"  # one monitor store (DuckDB) per rung: parallel rungs never share a file
CHECKPOINTS_DIR = "checkpoints"


@dataclass(frozen=True)
class LadderResult:
    """What ``ladder run`` did: the table it wrote, the rungs it trained and those it skipped."""

    name: str
    out: str
    table: str
    backend: str
    trained: tuple[RungResult, ...]
    skipped: tuple[str, ...]  # rungs already recorded in ``out`` (resumed ladder)
    rows: tuple[dict[str, Any], ...]  # the ladder table, smallest rung first

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out": self.out, "table": self.table,
                "backend": self.backend, "trained": [r.as_dict() for r in self.trained],
                "skipped": list(self.skipped), "rows": [dict(r) for r in self.rows]}

    def __repr__(self) -> str:
        return (f"LadderResult({self.name!r}: {len(self.rows)} rungs in {self.table}, "
                f"{len(self.trained)} trained, {len(self.skipped)} resumed)")


@dataclass(frozen=True)
class RungJob:
    """One rung to train: everything a worker process or Ray task needs (picklable)."""

    spec: LadderSpec
    rung: RungSpec
    out: str
    records: str = RECORDS_DIR
    monitor: bool = True


@functools.lru_cache(maxsize=2)
def _corpus(spec: CorpusSpec) -> Corpus:
    # One read per process, shared by the rungs it trains.
    return load_corpus(spec.paths, suffixes=spec.suffixes, max_bytes=spec.max_bytes,
                       val_fraction=spec.val_fraction)


def _train_job(job: RungJob) -> RungResult:
    """Train one rung with the monitor's detectors on, and record it the moment it finishes."""
    out = Path(job.out)
    spec, rung = job.spec, job.rung
    (out / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINTS_DIR / f"{rung.name}.pt"
    corpus = _corpus(spec.corpus)
    fingerprint = spec.fingerprint(rung)
    if job.monitor:
        from scaleguard.monitor import start

        (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        config = {"ladder": spec.name, "rung": rung.model_dump(mode="json"),
                  "spec": spec.model_dump(mode="json", exclude={"rungs", "next"}),
                  "corpus": corpus.as_dict()}
        # The run id is the rung's fingerprint: a resumed rung appends to its own run.
        with start(f"{spec.name}/{rung.name}", config, store=out / RUNS_DIR / f"{rung.name}.duckdb",
                   run_id=fingerprint) as run:
            result = train_rung(spec, rung, corpus, run=run, checkpoint=checkpoint,
                                peak_flops=spec.device_peak_flops())
    else:
        result = train_rung(spec, rung, corpus, checkpoint=checkpoint,
                            peak_flops=spec.device_peak_flops())
    write_record(out / job.records, result.table_row())
    return result


def rung_executor(backend: str | Executor | None, spec: LadderSpec, *,
                  workers: int | None = None) -> Executor:
    """The executor for rungs: ``local`` trains them one after another in this process;
    ``process`` on local worker processes; ``ray`` / ``ray://host:port`` as Ray tasks that each
    ask for the CPU threads (and, with ``device: cuda``, the GPU) a rung uses.
    """
    if backend is None or backend == "local":
        return SerialExecutor()
    executor = get_executor(backend, workers=workers, option="--backend")
    if executor.name == "ray":
        from scaleguard.compute import RayExecutor

        assert isinstance(executor, RayExecutor)
        return RayExecutor(executor.address, num_cpus=float(spec.threads or 1),
                           num_gpus=1.0 if spec.device == "cuda" else 0.0, chunksize=1)
    return executor


def run_rungs(spec: LadderSpec, rungs: Sequence[RungSpec], out: str | Path, *,
              records: str = RECORDS_DIR, executor: str | Executor | None = None,
              progress: Progress | None = None, monitor: bool = True,
              workers: int | None = None) -> tuple[list[RungResult], list[str], dict[str, Any]]:
    """Train the ``rungs`` not yet recorded under ``out/records``.

    Returns the rungs trained now, the names skipped as already recorded, and every record.
    A record of the same name from a different spec is refused rather than mixed in.
    """
    out = Path(out)
    folder = out / records
    done = read_records(folder)
    pending, skipped = [], []
    for rung in rungs:
        row = done.get(rung.name)
        if row is None:
            pending.append(rung)
        elif row["fingerprint"] == spec.fingerprint(rung):
            skipped.append(rung.name)
        else:
            raise ConfigError(f"{folder / (rung.name + '.json')}: rung "
                              f"{rung.name!r} was trained with a different spec (fingerprint "
                              f"{row['fingerprint']}, now {spec.fingerprint(rung)}); use "
                              "another --out, or delete that record to train it again")
    runner = rung_executor(executor, spec, workers=workers)
    jobs = [RungJob(spec, rung, str(out), records, monitor) for rung in pending]
    trained = runner.map(_train_job, jobs, progress=progress)
    for result in trained:  # again here: a remote worker's record landed on its own disk
        write_record(folder, result.table_row())
    return trained, skipped, read_records(folder)


def run_ladder(spec: LadderSpec, out: str | Path, *, executor: str | Executor | None = None,
               progress: Progress | None = None, monitor: bool = True,
               workers: int | None = None) -> LadderResult:
    """Train every rung of ``spec`` not yet recorded in ``out`` and write ``out/ladder.csv``.

    Parameters
    ----------
    executor:
        ``"local"`` (default: one rung after another in this process), ``"process"``,
        ``"ray"``, ``"ray://host:port"``, or an :class:`~scaleguard.compute.Executor`.
    progress:
        Called with (rungs done, rungs to train) as rungs finish.
    monitor:
        Log every rung through ``scaleguard.monitor`` (one DuckDB store per rung under
        ``out/runs``) with the default detectors on.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trained, skipped, records = run_rungs(spec, spec.rungs, out, executor=executor,
                                          progress=progress, monitor=monitor, workers=workers)
    names = [rung.name for rung in spec.rungs]
    rows = [records[name] for name in names]
    table = write_table(out, rows)
    backend = executor if isinstance(executor, str) else getattr(executor, "name", "local")
    return LadderResult(name=spec.name, out=str(out), table=str(table),
                        backend=backend or "local", trained=tuple(trained),
                        skipped=tuple(skipped),
                        rows=tuple(sorted(rows, key=lambda r: (r["params"], r["tokens"]))))
