import math

import pytest

torch = pytest.importorskip("torch")

from scaleguard.errors import ConfigError  # noqa: E402
from scaleguard.ladder import (  # noqa: E402
    GPT,
    GPTConfig,
    LadderSpec,
    gpt_shape,
    load_corpus,
    lr_at,
    non_embedding_params,
    rung_steps,
    stdlib_root,
    train_rung,
)


@pytest.fixture(scope="module")
def small_corpus():
    # The email package of the standard library: a few hundred kB of real Python, 20-odd files.
    return load_corpus([stdlib_root() / "email"], val_fraction=0.2, max_bytes=2e5)


def _spec(**over):
    base = {"rungs": [{"layers": 1, "width": 16}], "model": {"block_size": 16, "head_dim": 8},
            "batch_size": 4, "threads": 1, "tokens": None, "eval_every": 10, "log_every": 5,
            "eval_batches": 2, "checkpoint_every": 10}
    base.pop("tokens")
    base.update(over)
    return LadderSpec.model_validate(base)


class _Recorder:
    def __init__(self, stop_at=None):
        self.rows, self.stop_at = [], stop_at

    def log(self, metrics, step=None):
        self.rows.append((step, dict(metrics)))
        if self.stop_at is not None and step >= self.stop_at:
            raise KeyboardInterrupt  # what Ctrl-C or a killed job looks like to the loop


@pytest.mark.parametrize("layers, width, heads", [(1, 16, 2), (2, 32, 4), (3, 48, 3)])
def test_parameter_counts_match_the_shape(layers, width, heads):
    model = GPT(GPTConfig(layers=layers, width=width, heads=heads, block_size=24))
    shape = gpt_shape(layers, width, heads, 24)
    assert model.non_embedding_params() == non_embedding_params(shape)
    assert sum(p.numel() for p in model.parameters()) == shape.params  # tied output layer


def test_schedule_warms_up_then_decays_to_the_floor():
    values = [lr_at(s, 200, 1.0, 0.05, 0.1) for s in range(200)]
    assert values[0] == pytest.approx(0.1) and max(values) == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    peak = values.index(max(values))
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1:], strict=False))


def test_training_learns_logs_and_is_deterministic(small_corpus):
    spec = _spec(rungs=[{"layers": 1, "width": 16, "tokens": 40 * 64}])
    assert rung_steps(spec, spec.rungs[0]) == 40
    log = _Recorder()
    first = train_rung(spec, spec.rungs[0], small_corpus, run=log)
    again = train_rung(spec, spec.rungs[0], small_corpus)
    assert first.loss == again.loss and first.train_loss == again.train_loss
    assert first.steps == 40 and first.tokens == 40 * 4 * 16
    assert first.loss < math.log(256) - 1.0  # far better than uniform bytes after 40 steps
    names = set().union(*(m for _, m in log.rows))
    assert {"loss", "val_loss", "grad_norm", "lr", "tokens_per_s"} <= names
    assert "energy/energy_j" in names  # resources.measure logged through the run
    assert first.energy_j > 0 and first.energy_status in ("measured", "estimated")
    assert first.mfu is None  # no peak known for this CPU
    assert first.table_row()["fingerprint"] == spec.fingerprint(spec.rungs[0])
    other_seed = train_rung(_spec(rungs=spec.rungs, seed=1), spec.rungs[0], small_corpus)
    assert other_seed.loss != first.loss


def test_interrupted_rung_resumes_from_its_checkpoint(small_corpus, tmp_path):
    spec = _spec(rungs=[{"layers": 1, "width": 16, "tokens": 30 * 64}])
    rung = spec.rungs[0]
    whole = train_rung(spec, rung, small_corpus, peak_flops=1e12)
    checkpoint = tmp_path / "rung.pt"
    with pytest.raises(KeyboardInterrupt):
        train_rung(spec, rung, small_corpus, run=_Recorder(stop_at=24), checkpoint=checkpoint)
    assert checkpoint.is_file()  # saved after step 20
    resumed = train_rung(spec, rung, small_corpus, checkpoint=checkpoint, peak_flops=1e12)
    assert resumed.resumed_from == 20 and not checkpoint.exists()
    assert resumed.loss == pytest.approx(whole.loss, rel=1e-6)
    assert resumed.train_loss == pytest.approx(whole.train_loss, rel=1e-6)
    assert 0 < resumed.mfu < 1
    # A checkpoint of another spec is not loaded.
    with pytest.raises(KeyboardInterrupt):
        train_rung(spec, rung, small_corpus, run=_Recorder(stop_at=24), checkpoint=checkpoint)
    fresh = train_rung(_spec(rungs=spec.rungs, seed=3), rung, small_corpus, checkpoint=checkpoint)
    assert fresh.resumed_from == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_config_error(small_corpus):
    spec = _spec(device="cuda")
    with pytest.raises(ConfigError, match=r"device: cuda was asked for but PyTorch sees no GPU"):
        train_rung(spec, spec.rungs[0], small_corpus)
