"""Assessment: what the readiness verdict costs beyond the statistics it rests on, and the demo.

1. The example study (``scaleguard/limits/examples/study.yaml`` on the synthetic ladder, 24
   bootstrap resamples on local processes) assessed end to end and written as report.html and
   assessment.json, against a reference that does only the statistical work the study asks for:
   ``LawFit(form="chinchilla").fit`` and ``bootstrap(24)`` with the same seed and executor. The
   ratio is what reading, the frontier, resources, layouts, every check, the verdict and the
   report add. Both sides must reach the same fitted parameters.
2. ``scaleguard demo`` (every component's demo step) as a fresh process: its wall time, which
   the issue wants under a minute on 2 cores.

Run: .venv/bin/python benchmarks/bench_assess.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from _timing import show, timed

from scaleguard.examples import synthetic_ladder
from scaleguard.io import read_ladder
from scaleguard.laws import LawFit
from scaleguard.limits import load_study, run_study
from scaleguard.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-assess-"))
    synthetic_ladder(seed=0).to_csv(folder / "synthetic_ladder.csv", index=False)
    study_path = folder / "study.yaml"
    study_path.write_text(files("scaleguard.limits").joinpath("examples/study.yaml")
                          .read_text("utf-8"), encoding="utf-8")
    study = load_study(study_path)
    spec = study.ladder
    print(f"example study: {spec.bootstrap} resamples on local processes, "
          f"{os.cpu_count()} CPUs")

    def reference() -> dict[str, float]:
        fit = LawFit(form=spec.form).fit(read_ladder(folder / "synthetic_ladder.csv"))
        fit.bootstrap(spec.bootstrap, spec.seed, executor="process", level=spec.confidence)
        return dict(fit.params_)

    def assessed() -> dict[str, float]:
        assessment = run_study(study, executor="process")
        write_report(assessment, folder / "report")
        return dict(assessment.law["params"])

    ref_times = timed(reference, args.repeat)
    full_times = timed(assessed, args.repeat)
    ref_params, full_params = ref_times.result, full_times.result
    same = all(abs(full_params[k] / ref_params[k] - 1) < 1e-9 for k in ref_params)
    print(f"  same fitted parameters: {same}")
    ref = show("fit + bootstrap (reference)", ref_times)
    full = show("assess + report", full_times)
    print(f"  ratio assess/reference: {full / ref:.2f}")
    size = (folder / "report" / "report.html").stat().st_size
    print(f"  report.html: {size / 2**20:.1f} MiB (plotly.js bundled)")

    # The console script beside this interpreter, as the README's first command runs it.
    demo = [str(Path(sys.executable).with_name("scaleguard")), "demo", "--out",
            str(folder / "demo")]

    def run_demo() -> int:
        return subprocess.run(demo, capture_output=True, check=True).returncode

    demo_times = timed(run_demo, args.repeat)
    print("scaleguard demo (fresh process, every component's step)")
    show("scaleguard demo", demo_times)


if __name__ == "__main__":
    main()
