"""``scaleguard fit FILE``: fit a scaling law, validate it, extrapolate it, budget the next run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scaleguard.cli._app import app
from scaleguard.cli._options import (
    COL_OPTION,
    JSON_OPTION,
    console,
    err_console,
    output_file,
    print_json,
)
from scaleguard.cli._table import Column, print_table
from scaleguard.errors import InputError
from scaleguard.units import format_quantity, parse_quantity

if TYPE_CHECKING:
    from scaleguard.laws import Law, SelectionResult
    from scaleguard.laws._report import FitReport

# The law families for --form's help, spelled here because importing scaleguard.laws (numpy,
# scipy) would make every --help slow; tests/cli/test_app.py checks it equals laws.FORMS.
FORM_NAMES = ("chinchilla", "saturating", "power", "data_constrained", "broken", "bounded",
              "sigmoid")
_DIMENSION_OF = {"params": "count", "tokens": "count", "unique_tokens": "count", "flops": "flop"}
_NOT_A_COLUMN = ("estimate", "lower", "upper", "level", "elasticity", "best_dimension",
                 "decades_beyond_data", "interval", "ensemble")
# Chinchilla 70B (Hoffmann et al. 2022): 70B parameters, 1.4T tokens, 5.9e23 FLOP.
_EXAMPLE = {"params": "70B", "tokens": "1.4T", "unique_tokens": "1.4T", "flops": "5.9e23"}


def parse_point(text: str, option: str = "--predict") -> dict[str, float]:
    """``"params=70B,tokens=1.4T"`` -> ``{"params": 7e10, "tokens": 1.4e12}``."""
    point: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError(f"{option} {text!r}: expected COLUMN=VALUE[,COLUMN=VALUE...], "
                             "e.g. params=70B,tokens=1.4T")
        point[name.strip()] = parse_quantity(value.strip(), name=f"{option} {name.strip()}")
    return point


def _check_point(law: Law, point: dict[str, float], text: str) -> None:
    """Refuse a --predict point that lacks a column the law needs, in the user's terms."""
    import pandas as pd

    from scaleguard.laws._data import COLUMN_MEANING, with_derived_inputs

    given = with_derived_inputs(law, pd.DataFrame({k: [v] for k, v in point.items()}))
    missing = [c for c in law.inputs if c not in given.columns]
    if missing:
        needs = " and ".join(f"{c}= ({COLUMN_MEANING.get(c, 'a scale column')})"
                             for c in missing)
        example = ",".join(f"{c}={_EXAMPLE.get(c, '...')}" for c in law.inputs)
        raise InputError(f"--predict {text}: the {law.name} law also needs {needs}; "
                         f"e.g. --predict {example}")


def _read(file: Path, columns: dict[str, str], form: str, y: str) -> Any:
    from scaleguard.io import prepare_ladder, read_table

    frame = read_table(file, columns)
    ladder_form = form in ("chinchilla", "data_constrained")
    looks_like_ladder = "params" in frame.columns and (
        "tokens" in frame.columns or "flops" in frame.columns)
    if ladder_form or looks_like_ladder:
        if "params" not in frame.columns:
            raise InputError(f"{file}: the {form} law needs a 'params' column; columns are "
                             f"{', '.join(map(repr, frame.columns))}; map yours with --col "
                             "params=Header")
        frame = prepare_ladder(frame, require_loss=(y == "loss"))
    return frame


def _span(interval: tuple[float, float] | None) -> str:
    if interval is None:
        return ""
    return f" [{format_quantity(interval[0], digits=3)}, {format_quantity(interval[1], digits=3)}]"


def _fmt(value: float, column: str) -> str:
    dimension = _DIMENSION_OF.get(column)
    return format_quantity(value, dimension, digits=4) if dimension else f"{value:.4g}"


def _print_report(report: FitReport) -> None:
    fit = report.fit
    what = "checkpoints" if fit.checkpoints is not None and fit.checkpoints.run_column else "runs"
    columns: list[str | Column] = ["parameter", Column("estimate", "right")]
    if fit.bootstrap is not None:
        columns.append(Column(f"{fit.bootstrap.level:.0%} CI ({fit.bootstrap.n_boot} resamples)",
                              "right"))
    cis = fit.bootstrap.ci if fit.bootstrap is not None else {}
    rows = []
    for name, value in fit.params.items():
        row = [name, f"{value:.5g}"]
        if cis:
            lo, hi = cis[name]
            row.append(f"{lo:.5g} – {hi:.5g}")
        rows.append(row)
    # The formula on a line of its own: wrapped inside a title it broke mid-formula.
    console.print(f"[bold]{report.source}: {fit.form} law, {fit.n_points} {what}[/bold]",
                  highlight=False)
    console.print(f"  {fit.formula}", markup=False, highlight=False, no_wrap=True)
    print_table(console, None, columns, rows)
    console.print(f"objective {fit.objective:.6g} ({fit.loss}"
                  f"{f', delta={fit.delta:g}' if fit.loss == 'huber' else ''}, summed); "
                  f"{'converged' if fit.converged else 'NOT converged'}; "
                  f"{fit.n_starts} starting points")
    console.print(f"law used: {fit.form} — {report.chosen_by}")
    c = fit.checkpoints
    if c is not None and c.run_column is not None:
        console.print(f"{c.n_runs} runs, {c.n_kept} of {c.n_rows} checkpoints fitted (the first "
                      f"{c.drop_early:.0%} of each run's {c.progress_column} dropped), each run "
                      "weighing the same")
    if c is not None and c.seed_noise is not None:
        console.print(f"seed-to-seed noise: {c.seed_noise:.3%} (log sd over "
                      f"{c.n_replicated} repeated configurations)")
    if fit.selection is not None:
        _print_candidates(fit.selection)
    if report.predictions:
        _print_predictions(report)
    for a in report.allocations:
        console.print(f"budget {format_quantity(a.budget, 'flop', digits=3)}: N* = "
                      f"{format_quantity(a.params, digits=4)}{_span(a.params_interval)}, D* = "
                      f"{format_quantity(a.tokens, digits=4)}{_span(a.tokens_interval)} "
                      f"({a.tokens_per_param:.1f} tokens/param), loss {a.loss:.4g}")
    for e in report.epochs:
        console.print(f"  with {format_quantity(e.unique_tokens, digits=4)} unique tokens: "
                      f"{e.epochs:.2f} epochs, loss {e.loss:.4g} "
                      f"(best single-epoch loss {e.loss_one_epoch:.4g})")
    if report.validation is not None:
        v = report.validation
        how = (f"auto re-run on the {v.n_train} training runs chose {v.form}" if
               v.procedure == "auto" else f"{v.form} fitted on {v.n_train}")
        console.print(f"held out {v.description}: {v.n_test} runs scored, {how}: "
                      f"MARE {v.mare:.4g}, log RMSE {v.log_rmse:.4g}")
    for note in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {note}")


def _print_predictions(report: FitReport) -> None:
    """The predictions with the interval of a new run, and the ensemble of laws under them."""
    fit = report.fit
    keys = [k for k in report.predictions[0] if k not in _NOT_A_COLUMN]
    rows = []
    for p in report.predictions:
        band = p.get("interval") or ({"lower": p["lower"], "upper": p["upper"]}
                                     if "lower" in p else None)
        shown = f"{p['estimate']:.4g}"
        if band is not None:
            shown += f" [{band['lower']:.4g}, {band['upper']:.4g}]"
        elastic = ", ".join(f"{c} {e:+.3f}" for c, e in p["elasticity"].items())
        rows.append([*[_fmt(p[k], k) for k in keys], shown, elastic, p["best_dimension"]])
    print_table(console, "predictions", [*(Column(k, "right") for k in [*keys, fit.target]),
                                         "elasticities", "grow first"], rows,
                legend="elasticities: d log y / d log x at the point; grow first: the "
                       "dimension whose growth helps most (per unit of cost with --cost)")
    model = report.calibration
    if model is not None:
        checked = ("unchecked" if model.coverage is None else
                   f"{model.coverage:.0%} of held-out runs covered in the backtest")
        console.print(f"in brackets: the {model.level:.0%} interval of a new run (run-to-run "
                      f"noise + extrapolation error; {checked})")
    for p in report.predictions:
        if "ensemble" in p:
            e = p["ensemble"]
            weights = ", ".join(f"{k} {w:.2f}" for k, w in e["weights"].items())
            at = ", ".join(_fmt(p[k], k) for k in keys)
            console.print(f"ensemble at {at}: {e['estimate']:.4g} [{e['lower']:.4g}, "
                          f"{e['upper']:.4g}] (weights {weights})")


def _print_candidates(selection: SelectionResult) -> None:
    """Every candidate's out-of-sample error at each rolling origin, and its verdict."""
    criterion = selection.criterion
    rows = []
    for s in selection.scores:
        values = s.origin_mare if criterion == "mare" else s.origin_log_rmse
        verdict = ("used" if s.form == selection.best else
                   selection.excluded.get(s.form, f"weight {selection.weights.get(s.form, 0):.2f}"))
        rows.append([s.form, str(s.n_params), f"{s.mean(criterion):.4g}",
                     " ".join(f"{v:.3g}" for v in values), verdict])
    print_table(console, f"candidates: held-out {criterion} at each origin (latest first)",
                ["law", Column("params", "right"), Column("mean", "right"), "per origin",
                 "verdict"], rows)
    for form, why in selection.failed.items():
        console.print(f"  {form} could not be fitted: {why}")
    for form, why in selection.left_out.items():
        console.print(f"  {form} not compared: {why}")


@app.command("fit")
def fit_command(
    file: Path = typer.Argument(..., help="Ladder or scale table: .csv, .tsv, .parquet, .jsonl."),
    form: str = typer.Option("chinchilla", "--form",
                             help=f"Law family: {', '.join(FORM_NAMES)} or auto."),
    x: list[str] | None = typer.Option(None, "--x", help="Scale column(s) of 1-D/multi laws."),
    y: str = typer.Option("loss", "--y", help="Metric column."),
    col: list[str] | None = COL_OPTION,
    bootstrap: int = typer.Option(0, "--bootstrap", help="Bootstrap resamples (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    executor: str = typer.Option("serial", "--executor",
                                 help="serial, process, ray or ray://host:port."),
    workers: int | None = typer.Option(None, "--workers", help="Processes for --executor."),
    holdout_above: str | None = typer.Option(
        None, "--holdout-above", help="Fit below COL=VALUE, score the runs above it."),
    leave_largest_group_out: bool = typer.Option(
        False, "--leave-largest-group-out", help="Score on the largest 'group' of runs."),
    predict: list[str] | None = typer.Option(
        None, "--predict", help="Point to predict, e.g. params=70B,tokens=1.4T. Repeatable."),
    budget: list[str] | None = typer.Option(
        None, "--budget", help="FLOP budget for the compute-optimal split. Repeatable."),
    unique_tokens: str | None = typer.Option(
        None, "--unique-tokens", help="Unique tokens available (data_constrained laws)."),
    cost: list[str] | None = typer.Option(
        None, "--cost", help="Cost per unit of a scale column, COL=VALUE, to rank dimensions "
        "at each --predict point. Repeatable."),
    higher_is_better: bool = typer.Option(
        False, "--higher-is-better", help="The metric is accuracy-like (default: lower wins)."),
    breaks: int = typer.Option(1, "--breaks", help="Breaks of the broken law."),
    loss: str = typer.Option("huber", "--loss", help="huber or squared."),
    delta: float = typer.Option(1e-3, "--delta", help="Huber threshold on log values."),
    level: float = typer.Option(0.95, "--level", help="Interval level."),
    drop_early: float = typer.Option(
        0.1, "--drop-early", help="With a 'run' column: share of each run's tokens (or steps) "
        "whose checkpoints are not fitted (Choshen et al. 2024: 0.1)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a self-contained HTML plot."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit a scaling law (Huber on log values, grid of L-BFGS starts), validate, extrapolate."""
    from scaleguard.io import parse_column_map
    from scaleguard.laws import FORMS, LawFit, holdout_split, largest_group_split, parse_holdout
    from scaleguard.laws._bootstrap import MAX_RESAMPLES
    from scaleguard.laws._report import build_report

    if form != "auto" and form not in FORMS:
        raise InputError(f"--form: unknown law {form!r}; expected one of {', '.join(FORMS)} "
                         "or auto")
    if bootstrap < 0 or bootstrap == 1 or bootstrap > MAX_RESAMPLES:
        raise InputError(f"--bootstrap: expected 0 (none) or 2 to {MAX_RESAMPLES:,} resamples, "
                         f"got {bootstrap}")
    if not 0 < level < 1:
        raise InputError(f"--level: expected an interval level in (0, 1), e.g. 0.95, "
                         f"got {level}")
    if plot is not None:
        output_file(plot, "--plot")
    frame = _read(file, parse_column_map(col), form, y)
    points = [parse_point(p) for p in predict or []]
    budgets = [parse_quantity(b, "flop", name="--budget") for b in budget or []]
    for value in budgets:
        if value <= 0:
            raise InputError(f"--budget: expected a positive number of FLOP, got {value:g}")
    unique = parse_quantity(unique_tokens, name="--unique-tokens") if unique_tokens else None
    split = None
    if holdout_above and leave_largest_group_out:
        raise InputError("--holdout-above and --leave-largest-group-out: choose one split")
    if holdout_above:
        column, threshold = parse_holdout(holdout_above)
        split = holdout_split(frame, column, threshold)
    elif leave_largest_group_out:
        split = largest_group_split(frame)
    x_cols: str | list[str] | None = (x[0] if len(x) == 1 else list(x)) if x else None
    fitter = LawFit(form=form, loss=loss, delta=delta, x=x_cols, y=y, breaks=breaks,
                    drop_early=drop_early)
    if form != "auto":  # refuse a bad point before the fit, not after it
        for text, point in zip(predict or [], points, strict=True):
            _check_point(fitter.make_law(frame), point, text)
    with console.status(f"fitting the {form} law…", spinner="dots") if not as_json else \
            _nothing():
        fitter.fit(frame)
    for text, point in zip(predict or [], points, strict=True):
        _check_point(fitter.law_, point, text)
    if bootstrap:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("bootstrap"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err_console,
                      disable=as_json) as bar:
            task = bar.add_task("bootstrap", total=bootstrap)
            fitter.bootstrap(n_boot=bootstrap, seed=seed, executor=executor, level=level,
                             workers=workers,
                             progress=lambda done, total: bar.update(task, completed=done))
    costs = {}
    for item in cost or []:
        costs.update(parse_point(item, "--cost"))
    report = build_report(fitter, frame, source=str(file), points=points, budgets=budgets,
                          unique_tokens=unique, split=split, level=level,
                          costs=costs or None, lower_is_better=not higher_is_better)
    if plot is not None:
        from scaleguard.laws._plot import law_figure

        law_figure(fitter, level=level, budgets=budgets).write_html(
            plot, include_plotlyjs=True, full_html=True)
    if as_json:
        print_json(report.as_dict())
        return
    _print_report(report)
    if plot is not None:
        console.print(f"plot written to {plot}")


class _nothing:
    """A do-nothing context manager (no spinner when printing JSON)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# The demo's scaling-law section: the target a planner would ask about, a budget 100x the
# ladder's largest, and a bootstrap small enough to keep the whole demo under a minute.
DEMO_TARGET: dict[str, float] = {"params": 70e9, "tokens": 1.4e12}  # Chinchilla (Hoffmann 2022)
DEMO_BUDGET = 1e22
DEMO_RESAMPLES = 100


def demo_step(out: Path) -> list[Any]:
    """Fit the synthetic ladder, bootstrap it, validate on its largest budget, plot it."""
    from scaleguard.cli.demo import Written
    from scaleguard.examples import synthetic_ladder
    from scaleguard.io import read_ladder
    from scaleguard.laws import LawFit, largest_group_split
    from scaleguard.laws._plot import law_figure
    from scaleguard.laws._report import build_report

    ladder_path = out / "synthetic_ladder.csv"
    if not ladder_path.is_file():
        synthetic_ladder(seed=0).to_csv(ladder_path, index=False)
    frame = read_ladder(ladder_path)
    fitter = LawFit(form="chinchilla").fit(frame)
    fitter.bootstrap(n_boot=DEMO_RESAMPLES, seed=0)
    report = build_report(fitter, frame, source=str(ladder_path), points=[DEMO_TARGET],
                          budgets=[DEMO_BUDGET], split=largest_group_split(frame))
    json_path = out / "laws_fit.json"
    json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    html_path = out / "laws_fit.html"
    law_figure(fitter, budgets=[DEMO_BUDGET]).write_html(html_path, include_plotlyjs=True,
                                                         full_html=True)
    v = report.validation
    held = f", held-out MARE {v.mare:.2%}" if v is not None else ""
    return [
        Written(json_path, f"Chinchilla-law fit with {DEMO_RESAMPLES}-resample CIs, the 70B "
                           f"prediction and the 1e22 FLOP allocation{held} (scaleguard fit "
                           "--json)"),
        Written(html_path, "the fit, its bootstrap band and the compute-optimal frontier"),
    ]
