"""Train one rung of the ladder: AdamW, warm-up and cosine decay, validation loss, checkpoints.

Every step's batch is drawn from a generator seeded by ``(seed, step)``, so a rung resumed from
a checkpoint sees exactly the batches it would have seen had it never stopped.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from scaleguard.errors import ConfigError
from scaleguard.ladder._corpus import Corpus
from scaleguard.ladder._model import GPT, GPTConfig
from scaleguard.ladder._shape import gpt_shape, non_embedding_params
from scaleguard.ladder._spec import LadderSpec, RungSpec
from scaleguard.resources import flops_per_token, measure, mfu, training_flops

__all__ = ["RungResult", "MetricLogger", "train_rung", "rung_steps", "lr_at"]

_PRECISION = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_VAL_STREAM = 2**31 - 1  # stream id of validation windows: never used by a training step


class MetricLogger(Protocol):
    """What a rung logs through: a :func:`scaleguard.monitor.start` run fits."""

    def log(self, metrics: dict[str, float], step: int | None = None) -> None: ...


@dataclass(frozen=True)
class RungResult:
    """One trained rung: size, budget, final losses, cost. Its ``table_row`` is a ladder row."""

    name: str
    layers: int
    width: int
    heads: int
    params: int  # non-embedding N (Kaplan et al. 2020)
    params_total: int
    tokens: int  # tokens actually trained on: steps · batch · block
    steps: int
    flops: float  # 6·N·D
    loss: float  # final validation loss, nats per byte
    train_loss: float  # mean training loss of the last log interval
    time_s: float
    tokens_per_s: float
    mfu: float | None
    energy_j: float | None  # energy of this run's training (from its last start, if resumed)
    energy_status: str | None  # "measured" (counters) or "estimated" (CPU time x power)
    device: str
    precision: str
    seed: int
    lr: float
    fingerprint: str
    corpus: str
    alerts: int = 0
    resumed_from: int = 0  # step a checkpoint resumed from (0: trained from scratch)
    # Process CPU seconds of the training: the rung's cost without the machine's other load
    # (on a shared CPU, wall time also counts the time other jobs held the cores).
    cpu_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def table_row(self) -> dict[str, Any]:
        """The row this rung adds to the ladder table (``scaleguard fit`` reads it)."""
        row = self.as_dict()
        row.pop("resumed_from")
        return row

    def __repr__(self) -> str:
        return (f"RungResult({self.name}: N={self.params:,}, D={self.tokens:,}, "
                f"val loss {self.loss:.4f}, {self.time_s:.1f}s)")


def rung_steps(spec: LadderSpec, rung: RungSpec) -> int:
    """Optimiser steps of ``rung``: its token budget over the tokens of one step, rounded up."""
    shape = gpt_shape(rung.layers, rung.width, rung.heads(spec.model.head_dim),
                      spec.model.block_size)
    tokens = rung.tokens or spec.tokens_per_param * non_embedding_params(shape)
    return max(1, math.ceil(tokens / (spec.batch_size * spec.model.block_size)))


def lr_at(step: int, steps: int, peak: float, warmup_fraction: float, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``min_ratio · peak`` at the last step.

    >>> [round(lr_at(s, 100, 1.0, 0.1, 0.1), 3) for s in (0, 9, 10, 55, 99)]
    [0.1, 1.0, 1.0, 0.542, 0.1]
    """
    warmup = max(1, round(warmup_fraction * steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - 1 - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _windows(data: np.ndarray, starts: np.ndarray, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-byte targets, (B, T) each, of the windows starting at ``starts``."""
    rows = data[starts[:, None] + np.arange(block + 1)]  # (B, T+1) uint8
    tensor = torch.from_numpy(rows.astype(np.int64))
    return tensor[:, :-1], tensor[:, 1:]


def _train_batch(data: np.ndarray, seed: int, step: int, batch: int, block: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng([seed, step])
    return _windows(data, rng.integers(0, data.size - block - 1, size=batch), block)


def _val_starts(val: np.ndarray, count: int, block: int) -> np.ndarray:
    """Evenly spaced windows over the whole validation split: the same for every rung."""
    return np.linspace(0, val.size - block - 1, count).astype(np.int64)


def _resolve_device(spec: LadderSpec) -> torch.device:
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but PyTorch sees no GPU "
                          "(install a CUDA build of torch, or use device: cpu)")
    return torch.device(spec.device)


@torch.no_grad()
def _evaluate(model: GPT, val: np.ndarray, starts: np.ndarray, spec: LadderSpec,
              device: torch.device, autocast: Callable[[], Any]) -> float:
    model.eval()
    total = 0.0
    for chunk in np.array_split(starts, spec.eval_batches):
        x, y = _windows(val, chunk, spec.model.block_size)
        with autocast():
            _, loss = model(x.to(device), y.to(device))
        assert loss is not None
        total += loss.item() * len(chunk)
    model.train()
    return total / len(starts)


def _save_atomically(state: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint whole


def train_rung(spec: LadderSpec, rung: RungSpec, corpus: Corpus, *,
               run: MetricLogger | None = None, checkpoint: Path | None = None,
               peak_flops: float | None = None) -> RungResult:
    """Train ``rung`` of ``spec`` on ``corpus`` and return its result.

    Parameters
    ----------
    run:
        Where metrics go (``loss``, ``val_loss``, ``grad_norm``, ``lr``, ``tokens_per_s``,
        ``mfu``); a :func:`scaleguard.monitor.start` run, whose detectors watch them.
    checkpoint:
        File to save model, optimiser and progress to every ``spec.checkpoint_every`` steps and
        to resume from when it exists; removed when the rung finishes.
    peak_flops:
        The device's peak FLOP/s; with it, MFU is logged and reported (PaLM's definition).
    """
    device = _resolve_device(spec)
    if spec.threads is not None and device.type == "cpu":
        torch.set_num_threads(spec.threads)
    block, batch = spec.model.block_size, spec.batch_size
    heads = rung.heads(spec.model.head_dim)
    shape = gpt_shape(rung.layers, rung.width, heads, block)
    torch.manual_seed(spec.seed)
    model = GPT(GPTConfig(layers=rung.layers, width=rung.width, heads=heads, block_size=block,
                          dropout=spec.model.dropout)).to(device)
    steps = rung_steps(spec, rung)
    peak_lr = spec.learning_rate(rung)
    opt = spec.optimizer
    # Weight decay on matrices only, as in nanoGPT (not on biases, norms or embeddings' rows).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": opt.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=peak_lr, betas=opt.betas)
    dtype = _PRECISION[spec.precision]

    def autocast() -> Any:
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    scaler = torch.amp.GradScaler("cuda") if spec.precision == "fp16" else None
    fingerprint = spec.fingerprint(rung)
    start_step, elapsed, train_time = 0, 0.0, 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_step, elapsed, train_time = state["step"], state["elapsed"], state["train_time"]
            if run is not None and state.get("run") and hasattr(run, "load_state_dict"):
                run.load_state_dict(state["run"])
    resumed_from = start_step
    val_starts = _val_starts(corpus.val, spec.eval_batches * batch, block)
    flops_token = flops_per_token(shape)
    tokens_per_step = batch * block
    window_loss, window_steps, window_time = 0.0, 0, 0.0
    val_loss, train_loss = float("nan"), float("nan")
    began = time.perf_counter() - elapsed
    # Energy of the training loop from counters where readable (RAPL, NVML), else estimated
    # from CPU time; logged to the run as energy/... metrics at the last step.
    with measure(f"rung {rung.name}", run=run, step=steps - 1,
                 gpu=device.type == "cuda") as meter:
        for step in range(start_step, steps):
            tick = time.perf_counter()
            lr = lr_at(step, steps, peak_lr, opt.warmup_fraction, opt.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = _train_batch(corpus.train, spec.seed, step, batch, block)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast():
                _, loss = model(x, y)
            assert loss is not None
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            value = loss.item()  # syncs the device, so the step timings below are real
            if not math.isfinite(value):
                raise ConfigError(f"rung {rung.name}: training loss is {value} at step {step}; "
                                  f"lower optimizer.lr (peak here {peak_lr:.3g})")
            # Throughput counts training steps only, not evaluation or checkpointing.
            window_time += time.perf_counter() - tick
            window_loss += value
            window_steps += 1
            last = step == steps - 1
            if (step + 1) % spec.log_every == 0 or last:
                train_time += window_time
                rate = window_steps * tokens_per_step / max(window_time, 1e-9)
                train_loss = window_loss / window_steps
                metrics = {"loss": train_loss, "grad_norm": float(grad_norm), "lr": lr,
                           "tokens_per_s": rate}
                if peak_flops is not None:
                    metrics["mfu"] = mfu(rate, flops_token, peak_flops)
                if (step + 1) % spec.eval_every == 0 or last:
                    val_loss = _evaluate(model, corpus.val, val_starts, spec, device, autocast)
                    metrics["val_loss"] = val_loss
                if run is not None:
                    run.log(metrics, step=step)
                window_loss, window_steps, window_time = 0.0, 0, 0.0
            if checkpoint is not None and (step + 1) % spec.checkpoint_every == 0 and not last:
                run_state = getattr(run, "state_dict", lambda: None)()
                _save_atomically({"fingerprint": fingerprint, "step": step + 1,
                                  "model": model.state_dict(),
                                  "optimizer": optimizer.state_dict(),
                                  "elapsed": time.perf_counter() - began,
                                  "train_time": train_time + window_time,
                                  "run": run_state}, checkpoint)
    total_time = time.perf_counter() - began
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    tokens = steps * tokens_per_step
    params = non_embedding_params(shape)
    rate = (steps - resumed_from) * tokens_per_step / max(train_time, 1e-9)
    energy = meter.result
    return RungResult(
        name=rung.name, layers=rung.layers, width=rung.width, heads=heads, params=params,
        params_total=shape.params, tokens=tokens, steps=steps,
        flops=training_flops(params, tokens), loss=val_loss, train_loss=train_loss,
        time_s=total_time, tokens_per_s=rate,
        mfu=None if peak_flops is None else mfu(rate, flops_token, peak_flops),
        energy_j=None if energy is None else energy.energy_j,
        energy_status=None if energy is None else energy.status, device=spec.device,
        precision=spec.precision, seed=spec.seed, lr=peak_lr, fingerprint=fingerprint,
        corpus=corpus.digest, alerts=len(getattr(run, "alerts_raised", ())),
        resumed_from=resumed_from, cpu_s=None if energy is None else energy.cpu_seconds)
