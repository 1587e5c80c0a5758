"""Issue #13: `resources plan --gpus 1e12` hung; the layout search is bounded up front."""

from __future__ import annotations

import pytest

from scaleguard.cli import main
from scaleguard.errors import InputError
from scaleguard.resources import model_preset, plan_layouts
from scaleguard.resources._planner import MAX_DEVICES, _divisors


def test_divisors_are_found_in_square_root_time():
    assert _divisors(12) == [1, 2, 3, 4, 6, 12]
    assert len(_divisors(MAX_DEVICES)) == 25  # 2**24: 1, 2, 4, ..., 2**24


@pytest.mark.parametrize("gpus", ["1e12", "1e300"])
def test_too_many_devices_are_refused_naming_the_option(gpus, capsys):
    argv = ["resources", "plan", "--model", "llama-3-8b", "--gpu", "h100-sxm",
            "--global-batch", "512", "--gpus", gpus]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().endswith(f"--gpus: expected at most 16,777,216, "
                                                    f"got '{gpus}'")
    with pytest.raises(InputError, match="at most 16,777,216 devices"):
        plan_layouts(model_preset("llama-3-8b"), "h100-sxm", 2**25, global_batch=512)
