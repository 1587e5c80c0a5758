"""Issue #13 regressions: run.log refuses what the store cannot hold, so flushes keep working."""

from __future__ import annotations

import math

import pytest

from scaleguard.errors import InputError
from scaleguard.monitor import DuckDBStore, start


def test_unstorable_points_are_refused_at_log_and_later_points_are_kept():
    # Was: step=2**63 accepted; every later flush failed with OverflowError, finish() raised
    # and the run stayed "running"; 10**400 raised OverflowError.
    store = DuckDBStore(":memory:")
    run = start("r", store=store, flush_every=None, detectors="none")
    run.log({"loss": 3.0}, step=0)
    with pytest.raises(InputError, match=r"step is 9223372036854775808, expected a whole"):
        run.log({"loss": 2.0}, step=2**63)
    with pytest.raises(InputError, match=r"log: metric 'loss' is 10000.*beyond the float64"):
        run.log({"loss": 10**400}, step=1)
    with pytest.raises(InputError, match="lone surrogate"):
        run.log({"\ud800": 1.0}, step=1)
    with pytest.raises(InputError, match="expected a whole number"):
        run.log({"loss": 1.0}, step=-1)
    run.log({"loss": 1.0, "grad_norm": math.inf}, step=1)
    run.finish()
    assert store.runs()[0].status == "finished"
    assert store.series(run.run_id, "loss").values.tolist() == [3.0, 1.0]
    assert store.series(run.run_id, "grad_norm").values.tolist() == [math.inf]


@pytest.mark.parametrize("config", [{"lr": math.nan}, {"tag": "\udc80"}, {"n": 10**30},
                                    {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
                                        [[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]
                                    ]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}])
def test_configs_that_cannot_be_read_back_are_refused(config):
    store = DuckDBStore(":memory:")
    with pytest.raises(InputError, match="^config: "):
        start("r", config, store=store, flush_every=None)
    assert store.runs() == []
