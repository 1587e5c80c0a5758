import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaleguard.errors import UnitError
from scaleguard.units import DIMENSIONS, format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("7e9", None, 7e9),
        ("70B", None, 70e9),
        ("70B", "count", 70e9),
        ("1.5T", "count", 1.5e12),
        ("20k", None, 2e4),
        ("1_000", None, 1000.0),
        ("80GiB", "bytes", 80 * 2**30),
        ("80GB", "bytes", 80e9),
        ("512bytes", "bytes", 512.0),
        ("3.2MWh", "energy", 3.2e6 * 3600),
        ("1287 MWh", "energy", 1287e6 * 3600),
        ("500tCO2e", "carbon", 500e6),
        ("552 tCO2e", "carbon", 552e6),
        ("2d", "duration", 172800.0),
        ("30m", "duration", 1800.0),
        ("14.8d", "duration", 14.8 * 86400),
        ("250ms", "duration", 0.25),
        ("400W", "power", 400.0),
        ("3.14e23FLOP", "flop", 3.14e23),
        ("3e23", "flop", 3e23),
        ("989TFLOP/s", "flop_rate", 989e12),
        ("312 TFLOPS", "flop_rate", 312e12),
        (2.5, "energy", 2.5),
        (".5", None, 0.5),
    ],
)
def test_parse_known_quantities(text, dimension, expected):
    assert parse_quantity(text, dimension) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "dimension", "expected"),
    [
        (70e9, "count", "70B"),
        (80 * 2**30, "bytes", "80GiB"),
        (3.2e6 * 3600, "energy", "3.2MWh"),
        (500e6, "carbon", "500tCO2e"),
        (172800.0, "duration", "2d"),
        (1800.0, "duration", "30m"),
        (3.14e23, "flop", "3.14e23 FLOP"),
        (989e12, "flop_rate", "989TFLOP/s"),
        (0.0, "count", "0"),
    ],
)
def test_format_known_quantities(value, dimension, expected):
    assert format_quantity(value, dimension) == expected


def test_format_rounding_carries_to_next_unit():
    assert format_quantity(999_960.0, "count", digits=3) == "1M"


@pytest.mark.parametrize(
    ("text", "dimension", "fragment"),
    [
        ("seventy", None, "cannot read"),
        ("70X", None, "unknown unit"),
        ("80GiB", "energy", "unit of bytes, expected a unit of energy"),
        ("70B", "energy", "is a count"),
        ("inf", None, "cannot read"),
        ("nan", None, "cannot read"),
        ("", None, "cannot read"),
        ("1e999", None, "not a finite"),
        ("3GiFLOP", "flop", "unknown unit"),
    ],
)
def test_parse_rejects_bad_text(text, dimension, fragment):
    with pytest.raises(UnitError, match=fragment):
        parse_quantity(text, dimension, name="--tokens")


def test_error_names_the_option():
    with pytest.raises(UnitError, match="^--params: "):
        parse_quantity("lots", name="--params")


def test_unknown_dimension_is_refused():
    with pytest.raises(UnitError, match="unknown dimension"):
        parse_quantity("1", "furlongs")
    with pytest.raises(UnitError, match="non-finite"):
        format_quantity(math.inf, "count")


finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False)


@given(value=finite, dimension=st.sampled_from(DIMENSIONS))
def test_parse_format_round_trip(value, dimension):
    back = parse_quantity(format_quantity(value, dimension), dimension)
    assert back == pytest.approx(value, rel=1e-12, abs=1e-300)


@given(value=st.floats(min_value=1e-3, max_value=1e30), dimension=st.sampled_from(DIMENSIONS),
       digits=st.integers(min_value=1, max_value=6))
def test_rounded_format_is_close(value, dimension, digits):
    back = parse_quantity(format_quantity(value, dimension, digits=digits), dimension)
    assert back == pytest.approx(value, rel=0.5 * 10 ** (1 - digits) + 1e-12)


@pytest.mark.parametrize("text", ["1e308k", "1.7e308T", "9e307kWh", 10**400])
def test_quantities_that_overflow_are_refused_by_option(text):
    # Issue #13: '1e308k' for --gpus, --trials, --runs, --seq gave OverflowError tracebacks.
    with pytest.raises(UnitError, match=r"^--gpus: .*too large \(beyond the float64 range\)"):
        parse_quantity(text, name="--gpus")


def test_zero_prints_as_a_bare_zero_that_reads_back():
    """Not "0bytes" or "0ms" (issue #18): zero is zero in every unit."""
    from scaleguard.units import format_quantity, parse_quantity

    for dimension in ("bytes", "duration", "energy", "power", "carbon", "count"):
        assert format_quantity(0.0, dimension, digits=3) == "0"
        assert parse_quantity(format_quantity(0.0, dimension), dimension) == 0.0
