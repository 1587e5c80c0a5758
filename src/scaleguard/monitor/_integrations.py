"""Callbacks for Hugging Face ``Trainer`` and PyTorch Lightning that log into a :class:`Run`.

Both frameworks are optional and heavy: they are imported only when a callback is made, and a
missing one gives a one-line error saying what to install.

Hugging Face (``transformers.TrainerCallback``): ``on_log(args, state, control, logs)`` carries
the trainer's logged dict (loss, grad_norm, learning_rate...) at ``state.global_step``;
``on_save`` marks a checkpoint; ``on_train_end`` finishes the run. Only the main process
(``state.is_world_process_zero``) logs.

Lightning (``lightning.pytorch.Callback`` or ``pytorch_lightning.Callback``):
``on_train_batch_end`` and ``on_validation_end`` log ``trainer.callback_metrics`` (what the
module passed to ``self.log``) at ``trainer.global_step``; ``on_train_end`` finishes the run.
Only the global-zero process logs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from scaleguard.errors import InputError
from scaleguard.monitor._run import Run

__all__ = ["hf_callback", "lightning_callback", "scalars"]


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``values`` that are single numbers (floats, ints, 0-d tensors/arrays).

    Strings, lists and multi-element tensors are left out: they are not metrics.
    """
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool | str | bytes) or value is None:
            continue
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError, RuntimeError):
            continue  # RuntimeError: torch refuses float() of a multi-element tensor
    return out


def _base(modules: tuple[str, ...], attr: str, extra: str) -> type:
    for name in modules:
        try:
            base: type = getattr(importlib.import_module(name), attr)
            return base
        except ImportError:
            continue
    raise InputError(f"{attr} needs {' or '.join(modules)}: pip install {extra}")


class _HFMethods:
    """The methods of the Hugging Face callback (mixed into ``TrainerCallback``)."""

    run: Run
    finish_on_end: bool

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        if logs and getattr(state, "is_world_process_zero", True):
            metrics = scalars(logs)
            if metrics:
                self.run.log(metrics, step=int(state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(state, "is_world_process_zero", True):
            self.run.log_event("checkpoint", {"output_dir": str(getattr(args, "output_dir", ""))},
                               step=int(state.global_step), source="transformers")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.finish_on_end:
            self.run.finish()
        else:
            self.run.flush()


class _LightningMethods:
    """The methods of the Lightning callback (mixed into ``Callback``)."""

    run: Run
    finish_on_end: bool

    def _log(self, trainer: Any) -> None:
        if getattr(trainer, "is_global_zero", True):
            metrics = scalars(getattr(trainer, "callback_metrics", {}) or {})
            if metrics:
                self.run.log(metrics, step=int(trainer.global_step))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._log(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._log(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.finish_on_end:
            self.run.finish()
        else:
            self.run.flush()


def hf_callback(run: Run, *, finish_on_end: bool = True) -> Any:
    """A ``transformers.TrainerCallback`` that logs the trainer's logs into ``run``.

    Use as ``Trainer(..., callbacks=[hf_callback(run)])``.
    """
    base = _base(("transformers",), "TrainerCallback", "transformers")
    cls = type("ScaleguardTrainerCallback", (_HFMethods, base), {})
    callback = cls()
    callback.run, callback.finish_on_end = run, finish_on_end
    return callback


def lightning_callback(run: Run, *, finish_on_end: bool = True) -> Any:
    """A Lightning ``Callback`` that logs ``trainer.callback_metrics`` into ``run``.

    Use as ``Trainer(..., callbacks=[lightning_callback(run)])``.
    """
    base = _base(("lightning.pytorch", "pytorch_lightning"), "Callback", "lightning")
    cls = type("ScaleguardLightningCallback", (_LightningMethods, base), {})
    callback = cls()
    callback.run, callback.finish_on_end = run, finish_on_end
    return callback
