import sys

import pytest

from scaleguard.compute import Executor, RayExecutor, SerialExecutor, get_executor
from scaleguard.errors import InputError


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise InputError(f"item {x}: expected anything but 3")
    return x


def _crash(x: int) -> int:
    raise ZeroDivisionError("a bug, not bad input")


def test_ray_keeps_item_order_and_reports_progress(ray_local):
    seen = []
    executor = RayExecutor()
    results = executor.map(_square, list(range(101)), progress=lambda d, t: seen.append((d, t)))
    assert results == SerialExecutor().map(_square, list(range(101)))
    assert seen[-1] == (101, 101)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert isinstance(executor, Executor)
    assert executor.map(_square, []) == []


def test_ray_one_item_per_task_when_asked(ray_local):
    seen = []
    results = RayExecutor(chunksize=1).map(_square, [3, 1, 2], progress=lambda d, t: seen.append(d))
    assert results == [9, 1, 4]
    assert sorted(seen) == [1, 2, 3]


def test_ray_reraises_scaleguard_errors_unwrapped(ray_local):
    with pytest.raises(InputError, match=r"^item 3: expected anything but 3$"):
        RayExecutor(chunksize=1).map(_fail_on_three, [1, 2, 3])
    # A bug stays a Ray task error (with its traceback), not a user-facing error.
    with pytest.raises(ray_local.exceptions.RayTaskError):
        RayExecutor().map(_crash, [1])


def test_get_executor_ray_specs():
    local = get_executor("ray")
    assert isinstance(local, RayExecutor) and local.address is None
    remote = get_executor("ray://head.example:10001")
    assert isinstance(remote, RayExecutor) and remote.address == "ray://head.example:10001"
    with pytest.raises(InputError, match=r"^--backend: unknown backend 'ray://'; expected serial"):
        get_executor("ray://", option="--backend")
    with pytest.raises(InputError, match="--backend: unknown backend 'rays'"):
        get_executor("rays", option="--backend")


@pytest.mark.parametrize("kwargs, field", [({"num_cpus": -1}, "num_cpus"),
                                           ({"num_gpus": -0.5}, "num_gpus"),
                                           ({"chunksize": 0}, "chunksize")])
def test_ray_executor_refuses_bad_settings(kwargs, field):
    with pytest.raises(InputError, match=field):
        RayExecutor(**kwargs)


def test_missing_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(InputError, match=r"Ray is not installed; install it with pip install"):
        RayExecutor().map(_square, [1])
