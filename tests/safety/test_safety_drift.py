import numpy as np
import pandas as pd
import pytest

from scaleguard.errors import InputError
from scaleguard.safety import drift_report
from scaleguard.safety._drift import PSI_DRIFT, mmd_test, psi


def cohorts(shift=0.0, language_shift=False, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"score": rng.normal(size=n), "length": rng.exponential(100, n),
                        "language": rng.choice(["en", "fr", "de"], n, p=[0.6, 0.2, 0.2])})
    probs = [0.3, 0.5, 0.2] if language_shift else [0.6, 0.2, 0.2]
    cur = pd.DataFrame({"score": rng.normal(shift, 1.0, n), "length": rng.exponential(100, n),
                        "language": rng.choice(["en", "fr", "de"], n, p=probs)})
    return ref, cur


def test_identical_cohorts_are_stable():
    report = drift_report(*cohorts())
    assert report.drifted == []
    assert {f.verdict for f in report.features} <= {"stable", "watch"}
    assert report.as_dict()["features"][0]["feature"] == "score"


def test_a_shifted_score_and_a_new_language_mix_are_named():
    report = drift_report(*cohorts(shift=0.4, language_shift=True))
    assert report.drifted == ["score", "language"]
    score = report.features[0]
    assert score.ks_p < 1e-6 and score.mmd_p < 0.05 and score.kind == "numeric"
    assert report.features[2].kind == "categorical" and report.features[2].ks_p is None
    assert "drifted: score, language" in repr(report)


def test_psi_is_zero_for_the_same_sample_and_large_for_a_big_shift():
    x = np.random.default_rng(1).normal(size=5000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert psi(x, x + 1.0) > PSI_DRIFT


def test_mmd_false_alarm_rate_is_near_its_level():
    rng = np.random.default_rng(2)
    ps = [mmd_test(rng.normal(size=60), rng.normal(size=60), seed=i, permutations=99)[1]
          for i in range(100)]
    assert np.mean(np.array(ps) <= 0.05) <= 0.12


def test_bad_inputs_name_the_feature():
    ref, cur = cohorts()
    with pytest.raises(InputError, match="feature 'colour' is missing from the reference"):
        drift_report(ref, cur, ["colour"])
    with pytest.raises(InputError, match="no values in the current"):
        drift_report(ref, cur.assign(score=np.nan), ["score"])
    with pytest.raises(InputError, match="--alpha"):
        drift_report(ref, cur, alpha=1.0)
    with pytest.raises(InputError, match="share no feature"):
        drift_report(ref[["score"]], cur[["length"]])


@pytest.mark.filterwarnings("error")  # an overflow in the kernel would be a RuntimeWarning
@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_mmd_is_scale_free_and_finite_at_the_edges_of_float64(scale):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=120), rng.normal(0.5, 1.0, size=120)
    small = mmd_test(x, y, permutations=199)
    scaled = mmd_test(x * scale, y * scale, permutations=199)
    assert np.isfinite(scaled[0])
    assert scaled == pytest.approx(small, rel=1e-9)
