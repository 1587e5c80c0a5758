"""The callbacks, driven the way each framework's documented callback protocol drives them.

transformers: CallbackHandler calls ``getattr(callback, event)(args, state, control, **kw)``
with ``logs=`` for ``on_log``. Lightning: the Trainer calls
``callback.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)`` etc. The fakes
below provide the base classes and the attributes the callbacks read, so the protocol is checked
wherever the frameworks are absent; test_monitor_frameworks.py runs the real trainers.
"""

import math
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

import scaleguard.monitor as sgm
from scaleguard.errors import InputError
from scaleguard.monitor import DuckDBStore
from scaleguard.monitor._integrations import hf_callback, lightning_callback, scalars


@dataclass
class FakeTrainerState:  # transformers.TrainerState's fields the callback reads
    global_step: int = 0
    is_world_process_zero: bool = True


@dataclass
class FakeArgs:
    output_dir: str = "out"


@dataclass
class FakeLightningTrainer:
    global_step: int = 0
    is_global_zero: bool = True
    callback_metrics: dict = field(default_factory=dict)


class FakeTensor:
    """Like a torch tensor: float() works only for one element."""

    def __init__(self, *values):
        self.values = values

    def __float__(self):
        if len(self.values) != 1:
            raise RuntimeError("a Tensor with 2 elements cannot be converted to Scalar")
        return float(self.values[0])


@pytest.fixture
def fake_transformers(monkeypatch):
    module = types.ModuleType("transformers")

    class TrainerCallback:  # the documented base: every event is a no-op
        def on_init_end(self, args, state, control, **kwargs):
            pass

        def on_step_end(self, args, state, control, **kwargs):
            pass

    module.TrainerCallback = TrainerCallback
    monkeypatch.setitem(sys.modules, "transformers", module)
    return module


@pytest.fixture
def fake_lightning(monkeypatch):
    lightning = types.ModuleType("lightning")
    pytorch = types.ModuleType("lightning.pytorch")

    class Callback:
        def on_fit_start(self, trainer, pl_module):
            pass

    pytorch.Callback = Callback
    lightning.pytorch = pytorch
    monkeypatch.setitem(sys.modules, "lightning", lightning)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", pytorch)
    return pytorch


def test_scalars_keeps_numbers_only():
    assert scalars({"loss": 2.0, "n": 3, "t": FakeTensor(1.5), "v": FakeTensor(1, 2),
                    "s": "x", "b": True, "z": None, "a": np.float32(0.5)}) == \
        {"loss": 2.0, "n": 3.0, "t": 1.5, "a": 0.5}


def test_hf_callback_logs_the_trainer_logs(fake_transformers):
    store = DuckDBStore(":memory:")
    run = sgm.start("hf", store=store, flush_every=None)
    callback = hf_callback(run)
    assert isinstance(callback, fake_transformers.TrainerCallback)
    args, state, control = FakeArgs(), FakeTrainerState(), object()
    callback.on_init_end(args, state, control)  # inherited events still work
    for step in range(1, 6):
        state.global_step = step
        event = "on_log"
        loss = math.nan if step == 5 else 3.0 / step
        getattr(callback, event)(args, state, control,
                                 logs={"loss": loss, "grad_norm": 1.0, "epoch": 0.1 * step})
    callback.on_save(args, state, control)
    worker = FakeTrainerState(global_step=6, is_world_process_zero=False)
    callback.on_log(args, worker, control, logs={"loss": 1.0})  # not the main process
    callback.on_train_end(args, state, control)
    assert run.status == "finished"
    loss = store.series(run.run_id, "loss")
    assert loss.steps.tolist() == [1, 2, 3, 4, 5]
    assert [a.step for a in store.alerts(run.run_id)] == [5]  # the NaN
    (checkpoint,) = store.events(run.run_id, kind="checkpoint")
    assert checkpoint.step == 5 and checkpoint.payload == {"output_dir": "out"}


def test_lightning_callback_logs_callback_metrics(fake_lightning):
    store = DuckDBStore(":memory:")
    run = sgm.start("pl", store=store, flush_every=None)
    callback = lightning_callback(run, finish_on_end=False)
    assert isinstance(callback, fake_lightning.Callback)
    trainer = FakeLightningTrainer()
    for step in range(4):
        trainer.global_step = step
        trainer.callback_metrics = {"train_loss": FakeTensor(2.0 - 0.1 * step)}
        callback.on_train_batch_end(trainer, None, None, None, step)
    trainer.callback_metrics = {"val_loss": FakeTensor(2.5)}
    callback.on_validation_end(trainer, None)
    callback.on_train_end(trainer, None)
    assert run.status == "running"  # finish_on_end=False: flushed, left open
    assert store.series(run.run_id, "train_loss").values.tolist() == \
        pytest.approx([2.0, 1.9, 1.8, 1.7])
    assert store.metrics(run.run_id) == ["train_loss", "val_loss"]
    run.finish()


def test_missing_framework_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    run = sgm.start("x", store=":memory:", flush_every=None)
    with pytest.raises(InputError, match="TrainerCallback needs transformers: pip install"):
        hf_callback(run)
    with pytest.raises(InputError, match="Callback needs lightning.pytorch or "
                                         "pytorch_lightning"):
        lightning_callback(run)
    run.finish()
