"""A real ladder on CPU: fit the smaller rungs, predict the largest rung's final validation loss.

Five byte-level GPTs (6.6k to 57k non-embedding parameters, 20 tokens per parameter, the
Python standard library's source as text) are trained with ``scaleguard.ladder``. A law is fitted
to the four smaller rungs (``saturating`` in compute, as ``scaleguard ladder predict`` does) and
its forecast of the largest rung is scored against what that rung then measured: the absolute
relative error. The reference forecast, measured in the same run, is persistence (the largest
fitted rung's loss, i.e. "scaling buys nothing"); the ratio of the two errors says how much the
law adds. Per rung: steps, time, tokens/s, energy (RAPL where readable, else estimated from CPU
time) and detector alerts.

Cost too (issue 19): the largest rung's wall time predicted from the smaller rungs' calibration
(achieved FLOP/s as a power law in size, ``forecast_cost``) against what it measured, with the
reference "same FLOP/s as the largest fitted rung"; and its energy, an estimate (mean power of
the smaller rungs × predicted time).

Not in CI (minutes of training). Run:
    .venv/bin/python benchmarks/bench_ladder_cpu.py [--out DIR] [--backend local|process|ray]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from scaleguard.io import read_ladder
from scaleguard.ladder import LadderSpec, forecast_cost, forecast_rung, run_ladder
from scaleguard.resources import ladder_frame, rung_model_flops

SPEC = {
    "name": "bench-cpu",
    "rungs": [{"layers": 2, "width": 16}, {"layers": 2, "width": 24},
              {"layers": 2, "width": 32}, {"layers": 2, "width": 40},
              {"layers": 2, "width": 48}],
    "model": {"block_size": 64, "head_dim": 8},
    "batch_size": 8,
    "tokens_per_param": 20,
    "threads": 1,
    "seed": 0,
    "eval_every": 500,
    "eval_batches": 16,
    "log_every": 50,
    "corpus": {"max_bytes": 8e6},
    "optimizer": {"lr": 0.006, "base_width": 32},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--backend", default="local")
    args = parser.parse_args()
    spec = LadderSpec.model_validate(SPEC)
    out = args.out or tempfile.mkdtemp(prefix="scaleguard-ladder-bench-")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"backend {args.backend}; out {out}")
    start = time.perf_counter()
    result = run_ladder(spec, out, executor=args.backend,
                        progress=lambda d, n: print(f"  rung {d}/{n} done "
                                                    f"({time.perf_counter() - start:.0f}s)"))
    wall = time.perf_counter() - start
    print(f"{'rung':8} {'N':>8} {'D':>10} {'steps':>6} {'val loss':>9} {'time':>7} "
          f"{'tok/s':>7} {'energy':>9} {'alerts':>6}")
    for row in result.rows:
        print(f"{row['name']:8} {row['params']:>8,} {row['tokens']:>10,} {row['steps']:>6} "
              f"{row['loss']:>9.4f} {row['time_s']:>6.1f}s {row['tokens_per_s']:>7.0f} "
              f"{row['energy_j']:>7.0f} J {row['alerts']:>6}"
              + ("" if row["energy_status"] == "measured" else " (energy estimated)"))
    print(f"ladder wall time: {wall:.0f}s")
    table = read_ladder(result.table)
    largest = spec.rungs[-1]
    smaller = table[table["name"] != largest.name]
    forecast = forecast_rung(smaller, spec, largest).observe(
        float(table.loc[table["name"] == largest.name, "loss"].iloc[0]))
    persistence = float(smaller["loss"].iloc[-1])
    persistence_error = abs(persistence - forecast.observed_loss) / forecast.observed_loss
    fit = forecast.fit
    print(f"fit on {fit.n_points} rungs: {fit.form} {fit.formula}; "
          + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    print(f"largest rung {largest.name}: predicted {forecast.predicted_loss:.4f}, "
          f"observed {forecast.observed_loss:.4f}, "
          f"absolute relative error {forecast.abs_rel_error:.2%}")
    print(f"reference (persistence, {smaller['name'].iloc[-1]}'s loss {persistence:.4f}): "
          f"absolute relative error {persistence_error:.2%}; "
          f"ratio law/persistence {forecast.abs_rel_error / persistence_error:.3f}")
    print(f"validation loss falls with size: {table['loss'].is_monotonic_decreasing}")

    frame = ladder_frame(result.table)
    last = frame[frame["name"] == largest.name].iloc[0]
    fitted = frame[frame["name"] != largest.name]
    energy = last["energy_j"] if "energy_j" in frame.columns else None
    cpu = float(last["cpu_s"]) if "cpu_s" in frame.columns else None
    cost = forecast_cost(fitted, spec, largest).observe(
        float(last["time_s"]), None if energy is None else float(energy),
        str(last.get("energy_status")), cpu)
    top = fitted.iloc[-1]
    same_rate = rung_model_flops(top["params_total"], top["tokens"]) / top["time_s"]
    flat = rung_model_flops(cost.params_total, cost.tokens) / same_rate
    flat_error = abs(flat - cost.observed_seconds) / cost.observed_seconds
    print(f"largest rung {largest.name} wall time: predicted {cost.predicted_seconds:.1f}s "
          f"[{cost.lower_seconds:.1f}, {cost.upper_seconds:.1f}] at {cost.level:.0%} "
          f"(FLOP/s ~ N^{cost.rate_exponent:.3f}), measured {cost.observed_seconds:.1f}s, "
          f"absolute relative error {cost.seconds_abs_rel_error:.2%} (target <= 15%)")
    print(f"reference (FLOP/s of {top['name']}): predicted {flat:.1f}s, absolute relative error "
          f"{flat_error:.2%}; ratio calibrated/reference "
          f"{cost.seconds_abs_rel_error / flat_error:.3f}")
    if cost.predicted_cpu_seconds is not None and cost.observed_cpu_seconds is not None:
        print(f"largest rung CPU time: predicted {cost.predicted_cpu_seconds:.1f}s, measured "
              f"{cost.observed_cpu_seconds:.1f}s, absolute relative error "
              f"{cost.cpu_abs_rel_error:.2%} (wall/CPU of the rung: "
              f"{cost.observed_seconds / cost.observed_cpu_seconds:.2f}, the machine's "
              "other load)")
    if cost.predicted_energy_j is not None:
        label = "measured" if cost.observed_energy_status == "measured" else "estimated"
        clock = "CPU time" if cost.predicted_cpu_seconds is not None else "time"
        print(f"largest rung energy: predicted {cost.predicted_energy_j:.0f} J (estimated: mean "
              f"power {cost.power_w:.2f} W x predicted {clock}), measured {label} "
              f"{cost.observed_energy_j:.0f} J, absolute relative error "
              f"{cost.energy_abs_rel_error:.2%}")


if __name__ == "__main__":
    main()
