"""Detectors by name: to rebuild one from its ``state_dict`` or pick one on the command line."""

from __future__ import annotations

from typing import Any

from scaleguard.errors import InputError
from scaleguard.monitor._detector import Detector

__all__ = ["detector_classes", "detector_from_state", "make_detector"]


def detector_classes() -> dict[str, type[Detector]]:
    """Every detector class by its ``name``."""
    from scaleguard.monitor import _burnrate, _changepoint, _forecast, _spikes, _trend

    classes: list[type[Detector]] = [
        _spikes.NonFiniteDetector, _spikes.SpikeDetector, _spikes.LossRatioDetector,
        _trend.DivergenceDetector, _trend.PlateauDetector, _trend.ThroughputDropDetector,
        _changepoint.PageHinkleyDetector, _changepoint.CusumDetector,
        _burnrate.BurnRateDetector, _forecast.ForecastDeviationDetector,
    ]
    return {cls.name: cls for cls in classes}


def make_detector(name: str, **params: Any) -> Detector:
    """A new detector of kind ``name`` with ``params``."""
    classes = detector_classes()
    if name not in classes:
        raise InputError(f"detector {name!r}: unknown; expected one of {', '.join(classes)}")
    try:
        return classes[name](**params)
    except TypeError as exc:
        raise InputError(f"detector {name!r}: bad settings ({exc})") from None


def detector_from_state(state: dict[str, Any]) -> Detector:
    """Rebuild a detector from what its :meth:`~Detector.state_dict` returned."""
    name = state.get("detector")
    detector = make_detector(str(name), **state.get("params", {}))
    detector.load_state_dict(state)
    return detector
