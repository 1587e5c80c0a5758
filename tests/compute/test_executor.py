import pytest

from scaleguard.compute import Executor, ProcessExecutor, SerialExecutor, get_executor
from scaleguard.errors import InputError


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("executor", [SerialExecutor(), ProcessExecutor(workers=2)])
def test_backends_agree_and_keep_order(executor):
    seen = []
    results = executor.map(_square, list(range(50)), progress=lambda d, t: seen.append((d, t)))
    assert results == [x * x for x in range(50)]
    assert seen[-1] == (50, 50) and len(seen) == 50
    assert isinstance(executor, Executor)


def test_get_executor_and_bad_names():
    assert get_executor(None).name == "serial"
    assert get_executor("process", workers=2).workers == 2
    custom = SerialExecutor()
    assert get_executor(custom) is custom
    assert ProcessExecutor(workers=1).map(_square, []) == []
    with pytest.raises(InputError, match="--executor: unknown backend 'gpu'"):
        get_executor("gpu")
    with pytest.raises(InputError, match="--workers"):
        ProcessExecutor(workers=0)
