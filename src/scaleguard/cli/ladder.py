"""``scaleguard ladder run|predict``: train a ladder of small GPTs, fit it, predict the next rung.

PyTorch (the ``ladder`` extra) is imported only when one of these commands runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer

from scaleguard.cli._app import app
from scaleguard.cli._options import JSON_OPTION, console, err_console, print_json
from scaleguard.cli._table import Column, print_table
from scaleguard.errors import ConfigError
from scaleguard.units import format_quantity

if TYPE_CHECKING:
    from scaleguard.compute import Progress as ProgressCallback

ladder_app = typer.Typer(help="Train a ladder of small GPTs, fit it, and predict the next rung.",
                         no_args_is_help=True)
app.add_typer(ladder_app, name="ladder")

FORECAST_NAME = "forecast.json"
NEXT_DIR = "next"  # the forecast rung's record, kept out of the ladder table it was predicted from

SPEC_ARGUMENT = typer.Argument(..., help="Ladder spec (YAML): rungs, budget, optimiser, device.")
OUT_OPTION = typer.Option(None, "--out", help="Output folder (default: ./<spec name>).")
BACKEND_OPTION = typer.Option(
    "local", "--backend",
    help="local (one rung after another here), process, ray, or ray://host:port.")
WORKERS_OPTION = typer.Option(None, "--workers", help="Processes of the process backend.")


def _ladder() -> ModuleType:
    try:
        import scaleguard.ladder as ladder
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise ConfigError("scaleguard ladder needs PyTorch; install it with "
                          "pip install 'scaleguard[ladder]'") from None
    return ladder


def _spec_and_folder(spec_path: Path, out: Path | None) -> tuple[ModuleType, Any, Path]:
    """The ladder package, the checked spec, and the output folder (default ./<spec name>)."""
    ladder = _ladder()
    spec = ladder.load_spec(spec_path)
    return ladder, spec, out if out is not None else Path(spec.name)


@contextmanager
def _rung_progress(label: str, total: int) -> Iterator[ProgressCallback]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err_console, transient=True, disable=not err_console.is_terminal)
    with bar:
        task = bar.add_task(label, total=total)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _known(value: Any) -> bool:
    return value is not None and value == value  # not None, not NaN (a CSV's empty cell)


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    """One line per rung; MFU only when a peak was given; ~ marks an estimated energy."""
    with_mfu = any(_known(row.get("mfu")) for row in rows)
    headers = ["rung", "N", "D", "steps", "val loss", "time", "tok/s"]
    headers += ["MFU"] * with_mfu + ["energy", "alerts"]
    table_rows = []
    for row in rows:
        energy: Any = row.get("energy_j")
        cells = [str(row["name"]), format_quantity(row["params"], digits=3),
                 format_quantity(row["tokens"], digits=3), str(row["steps"]),
                 f"{row['loss']:.4f}", format_quantity(row["time_s"], "duration", digits=3),
                 f"{row['tokens_per_s']:,.0f}"]
        if with_mfu:
            cells.append(f"{row['mfu']:.1%}" if _known(row.get("mfu")) else "")
        cells.append("" if not _known(energy) else
                     ("" if row.get("energy_status") == "measured" else "~")
                     + format_quantity(energy, "energy", digits=3))
        cells.append(str(row.get("alerts", 0)))
        table_rows.append(cells)
    print_table(console, title, ["rung", *(Column(h, "right") for h in headers[1:])],
                table_rows, legend="N: parameters; D: training tokens")
    if any(row.get("energy_status") == "estimated" for row in rows):
        console.print("~ energy estimated from CPU time (no readable energy counter)")


@ladder_app.command("run")
def run_command(
    spec_path: Path = SPEC_ARGUMENT,
    out: Path | None = OUT_OPTION,
    backend: str = BACKEND_OPTION,
    workers: int | None = WORKERS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train every rung not yet recorded in --out and write the ladder table (ladder.csv)."""
    ladder, spec, folder = _spec_and_folder(spec_path, out)
    with _rung_progress("training rungs", len(spec.rungs)) as update:
        result = ladder.run_ladder(spec, folder, executor=backend, progress=update,
                                   workers=workers)
    if as_json:
        print_json(result.as_dict())
        return
    _print_rows(f"ladder {spec.name!r}: {len(result.trained)} trained, "
                f"{len(result.skipped)} already recorded", list(result.rows))
    console.print(f"ladder table: {result.table}  (fit it: scaleguard fit {result.table})")


@ladder_app.command("predict")
def predict_command(
    spec_path: Path = SPEC_ARGUMENT,
    out: Path | None = OUT_OPTION,
    run: bool = typer.Option(False, "--run", help="Then train that rung and report predicted "
                                                   "against observed."),
    form: str | None = typer.Option(None, "--form", help="Law to fit (default: saturating "
                                                         "from 4 rungs, else power)."),
    x: str = typer.Option("flops", "--x", help="Scale column of the law: flops or params."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Resamples for an interval (0: none)."),
    backend: str = BACKEND_OPTION,
    workers: int | None = WORKERS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit the ladder table and predict the next rung's validation loss, wall time and energy
    before training it."""
    from scaleguard.io import read_ladder
    from scaleguard.resources import ladder_frame

    ladder, spec, folder = _spec_and_folder(spec_path, out)
    table_path = folder / ladder.TABLE_NAME
    if not table_path.is_file():
        raise ConfigError(f"{table_path}: no ladder table yet; run scaleguard ladder run "
                          f"{spec_path} --out {folder} first")
    rung = spec.next_rung()
    # The bootstrap may run on Ray or processes; rungs' "local" means serial there too.
    boot_backend = "serial" if backend == "local" else backend
    forecast = ladder.forecast_rung(read_ladder(table_path), spec, rung, form=form, x=x,
                                    n_boot=bootstrap, seed=spec.seed, executor=boot_backend)
    cost = ladder.forecast_cost(ladder_frame(table_path), spec, rung)
    forecast_path = folder / FORECAST_NAME

    def write() -> None:
        payload = {**forecast.as_dict(), "cost": cost.as_dict()}
        forecast_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    # Written before the rung runs: the prediction is on disk before the observation exists.
    write()
    if run:
        with _rung_progress(f"training {rung.name}", 1) as update:
            trained, _, records = ladder.run_rungs(spec, [rung], folder, records=NEXT_DIR,
                                                   executor=backend, progress=update,
                                                   workers=workers)
        record = records[rung.name]
        forecast = forecast.observe(record["loss"])
        cost = cost.observe(record["time_s"], record.get("energy_j"),
                            record.get("energy_status"), record.get("cpu_s"))
        write()
    if as_json:
        print_json({**forecast.as_dict(), "cost": cost.as_dict()})
        return
    fit = forecast.fit
    params = ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items())
    console.print(f"fit: {fit.form} on {fit.n_points} rungs ({fit.formula}; {params})")
    band = ("" if forecast.lower is None else
            f"  [{forecast.lower:.4f}, {forecast.upper:.4f}] at {forecast.level:.0%}")
    console.print(f"next rung {rung.name}: N={format_quantity(forecast.params, digits=3)}, "
                  f"D={format_quantity(forecast.tokens, digits=3)}, "
                  f"C={forecast.flops:.3g} FLOP")
    console.print(f"predicted validation loss: {forecast.predicted_loss:.4f}{band}")
    if forecast.observed_loss is not None:
        console.print(f"observed validation loss:  {forecast.observed_loss:.4f}  "
                      f"(absolute relative error {forecast.abs_rel_error:.2%})")
    _print_cost(cost)
    console.print(f"forecast: {forecast_path}")


def _print_cost(cost: Any) -> None:
    """Predicted (and measured) wall time and energy; every predicted energy is an estimate."""
    def duration(seconds: float) -> str:
        return format_quantity(seconds, "duration", digits=3)

    console.print(f"predicted wall time: {duration(cost.predicted_seconds)}  "
                  f"[{duration(cost.lower_seconds)}, {duration(cost.upper_seconds)}] at "
                  f"{cost.level:.0%} (achieved FLOP/s ~ N^{cost.rate_exponent:.2f} from "
                  f"{len(cost.fitted_on)} rungs)")
    if cost.predicted_energy_j is not None:
        basis = "estimated" if cost.power_estimated else "measured"
        energy = format_quantity(cost.predicted_energy_j, "energy", digits=3)
        power = format_quantity(cost.power_w, "power", digits=3)
        clock = "CPU time" if cost.predicted_cpu_seconds is not None else "time"
        console.print(f"predicted energy: ~{energy} (estimated: {basis} mean power {power} "
                      f"x predicted {clock})")
    if cost.observed_seconds is not None:
        console.print(f"measured wall time:  {duration(cost.observed_seconds)}  "
                      f"(absolute relative error {cost.seconds_abs_rel_error:.2%})")
    if cost.predicted_cpu_seconds is not None:
        seen = ("" if cost.observed_cpu_seconds is None else
                f", measured {duration(cost.observed_cpu_seconds)} (absolute relative error "
                f"{cost.cpu_abs_rel_error:.2%})")
        console.print(f"predicted CPU time:  {duration(cost.predicted_cpu_seconds)}{seen}")
    if cost.observed_energy_j is not None:
        mark = "" if cost.observed_energy_status == "measured" else "~"
        label = "measured" if cost.observed_energy_status == "measured" else "estimated"
        console.print(f"measured energy: {mark}"
                      f"{format_quantity(cost.observed_energy_j, 'energy', digits=3)} "
                      f"({label}; absolute relative error {cost.energy_abs_rel_error:.2%})")
