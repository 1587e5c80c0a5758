"""Fuzz the tracking API (issue #13): every ``log`` either is refused with an InputError or is
stored exactly; a refused point never blocks the ones after it, and ``finish`` always works."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._hostile import CASES, examples, hostile_scalar, hostile_text

from scaleguard.errors import InputError
from scaleguard.monitor import DuckDBStore, start

FUZZ = settings(max_examples=examples(40), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

calls = st.lists(st.tuples(
    st.dictionaries(st.one_of(st.just("loss"), hostile_text), hostile_scalar, min_size=1,
                    max_size=3),
    st.one_of(st.none(), st.integers(-5, 50), st.sampled_from([2**63, 2**63 - 1, -2**63, 10**30,
                                                               True, 1.5, "3"]))),
    min_size=1, max_size=8)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@FUZZ
@given(calls=calls, config=st.dictionaries(hostile_text, hostile_scalar, max_size=3))
def test_log_refuses_or_stores_exactly(calls, config):
    store = DuckDBStore(":memory:")
    try:
        run = start("fuzz", config, store=store, flush_every=None, detectors="none",
                    max_buffer=3)
    except InputError:
        assert store.runs() == []  # a config that cannot be read back is never stored
        return
    accepted: list[tuple[int, str, float]] = []
    step = -1
    for metrics, at in calls:
        CASES["tracking"] += 1
        try:
            run.log(metrics, step=at)  # type: ignore[arg-type]
        except InputError as exc:
            assert "\n" not in str(exc)
            continue
        step = max(step, at) if at is not None else step + 1  # type: ignore[operator]
        accepted += [(int(at if at is not None else step), name, float(value))
                     for name, value in metrics.items()]
    run.finish()
    assert store.runs()[0].status == "finished"
    stored = store.frame(run.run_id)
    def order(r: tuple) -> tuple:
        return int(r[0]), str(r[1]), repr(float(r[2]))

    rows = sorted(zip(stored["step"], stored["name"], stored["value"], strict=True), key=order)
    assert len(rows) == len(accepted)
    for got, want in zip(rows, sorted(accepted, key=order), strict=True):
        assert got[0] == want[0] and got[1] == want[1] and _same(got[2], want[2])
