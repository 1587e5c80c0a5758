"""The issue's must-show: a tiny ladder trained end to end on CPU, fitted, and forecast."""

import json

import pytest

pytest.importorskip("torch")

from scaleguard.cli import main  # noqa: E402
from scaleguard.io import read_ladder  # noqa: E402
from scaleguard.ladder import load_spec, run_ladder  # noqa: E402
from scaleguard.monitor import DuckDBStore  # noqa: E402

# Three sizes at 10 tokens per parameter: 130, 285 and 499 steps of 256 byte-tokens.
TINY = """
name: tiny
rungs:
  - {layers: 1, width: 16}
  - {layers: 1, width: 24}
  - {layers: 1, width: 32}
next: {layers: 2, width: 16}
model: {block_size: 32, head_dim: 8}
batch_size: 8
tokens_per_param: 10
threads: 1
eval_every: 100
eval_batches: 4
log_every: 20
checkpoint_every: 100
corpus: {max_bytes: 600k}
optimizer: {lr: 0.01, base_width: 32}
"""


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def trained(spec_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder")
    result = run_ladder(load_spec(spec_path), out)
    return out, result


def test_tiny_ladder_table_fits_and_loss_falls_with_size(trained, capsys):
    out, result = trained
    assert [r.steps for r in result.trained] == [130, 285, 499]
    table = read_ladder(out / "ladder.csv")
    assert list(table["name"]) == ["L1-W16", "L1-W24", "L1-W32"]
    assert table["params"].is_monotonic_increasing
    assert table["loss"].is_monotonic_decreasing and table["loss"].nunique() == 3
    assert (table["flops"] == 6 * table["params"] * table["tokens"]).all()
    assert (table["energy_j"] > 0).all() and (table["time_s"] > 0).all()
    # `scaleguard fit` reads the table as it is.
    assert main(["fit", str(out / "ladder.csv"), "--form", "power", "--x", "flops",
                 "--json"]) == 0
    fit = _json(capsys)
    assert fit["fit"]["params"]["alpha"] > 0 if "fit" in fit else fit["params"]["alpha"] > 0


def test_every_rung_logged_through_the_monitor(trained):
    out, result = trained
    for rung in result.trained:
        with DuckDBStore(out / "runs" / f"{rung.name}.duckdb", read_only=True) as store:
            (run,) = store.runs()
            assert run.status == "finished" and run.run_id == rung.fingerprint
            metrics = set(store.metrics(run.run_id))
            assert {"loss", "val_loss", "grad_norm", "tokens_per_s", "lr",
                    "energy/energy_j"} <= metrics


def test_resume_skips_recorded_rungs_and_retrains_a_lost_one(trained, spec_path, capsys):
    out, first = trained
    before = (out / "ladder.csv").read_text()
    assert main(["ladder", "run", str(spec_path), "--out", str(out), "--json"]) == 0
    again = _json(capsys)
    assert again["trained"] == [] and again["skipped"] == ["L1-W16", "L1-W24", "L1-W32"]
    assert (out / "ladder.csv").read_text() == before
    (out / "rungs" / "L1-W16.json").unlink()
    assert main(["ladder", "run", str(spec_path), "--out", str(out), "--json"]) == 0
    redo = _json(capsys)
    assert [r["name"] for r in redo["trained"]] == ["L1-W16"]
    assert redo["trained"][0]["loss"] == first.trained[0].loss  # same seed, same rung


def test_a_changed_spec_is_refused_not_mixed_in(trained, spec_path, tmp_path, capsys):
    out, _ = trained
    changed = tmp_path / "changed.yaml"
    changed.write_text(spec_path.read_text().replace("lr: 0.01", "lr: 0.02"))
    assert main(["ladder", "run", str(changed), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "L1-W16.json: rung 'L1-W16' was trained with a different spec" in err
    assert err.count("\n") == 1


def test_predict_then_run_the_next_rung(trained, spec_path, capsys):
    out, _ = trained
    assert main(["ladder", "predict", str(spec_path), "--out", str(out), "--json"]) == 0
    forecast = _json(capsys)
    assert forecast["rung"] == "L2-W16" and forecast["observed_loss"] is None
    assert forecast["fit"]["form"] == "power" and forecast["fitted_on"] == ["L1-W16", "L1-W24",
                                                                            "L1-W32"]
    assert 1.0 < forecast["predicted_loss"] < 5.6
    cost = forecast["cost"]  # wall time and energy, predicted from the smaller rungs
    assert cost["lower_seconds"] <= cost["predicted_seconds"] <= cost["upper_seconds"]
    assert cost["energy_estimated"] is True and cost["observed_seconds"] is None
    assert json.loads((out / "forecast.json").read_text()) == forecast
    assert main(["ladder", "predict", str(spec_path), "--out", str(out), "--run"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "predicted validation loss" in text and "absolute relative error" in text
    assert "predicted wall time" in text and "measured wall time" in text
    assert "predicted energy: ~" in text and "(estimated" in text
    scored = json.loads((out / "forecast.json").read_text())
    record = json.loads((out / "next" / "L2-W16.json").read_text())
    assert scored["cost"]["observed_seconds"] == record["time_s"]
    assert scored["cost"]["seconds_abs_rel_error"] == pytest.approx(
        abs(scored["cost"]["predicted_seconds"] - record["time_s"]) / record["time_s"])
    observed = record["loss"]
    assert scored["observed_loss"] == observed
    assert scored["abs_rel_error"] == pytest.approx(
        abs(scored["predicted_loss"] - observed) / observed)
    assert "L2-W16" not in (out / "ladder.csv").read_text()  # the ladder it was predicted from


def test_cli_bad_paths(spec_path, tmp_path, capsys):
    assert main(["ladder", "run", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: no such ladder spec file" in capsys.readouterr().err
    assert main(["ladder", "run", str(spec_path), "--out", str(tmp_path / "o"),
                 "--backend", "gpu"]) == 2
    assert "--backend: unknown backend 'gpu'" in capsys.readouterr().err
    assert main(["ladder", "predict", str(spec_path), "--out", str(tmp_path / "empty")]) == 2
    assert "no ladder table yet; run scaleguard ladder run" in capsys.readouterr().err


def test_rungs_as_ray_tasks_match_local(ray_local, tmp_path):
    # Two rungs of about 50 steps: one Ray task each, the same losses as in this process.
    text = TINY.replace("tokens_per_param: 10", "tokens_per_param: 2").replace(
        "  - {layers: 1, width: 32}\n", "").replace("max_bytes: 600k", "max_bytes: 200k")
    spec = load_spec_text(tmp_path, text)
    local = run_ladder(spec, tmp_path / "local", monitor=False)
    on_ray = run_ladder(spec, tmp_path / "ray", executor="ray", monitor=False)
    assert on_ray.backend == "ray" and len(on_ray.trained) == 2
    assert [r["loss"] for r in on_ray.rows] == pytest.approx([r["loss"] for r in local.rows],
                                                             rel=1e-6)
    assert (tmp_path / "ray" / "rungs" / "L1-W24.json").is_file()


def load_spec_text(folder, text):
    path = folder / "spec.yaml"
    path.write_text(text)
    return load_spec(path)
