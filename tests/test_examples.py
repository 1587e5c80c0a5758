import numpy as np

from scaleguard.examples import SYNTHETIC_LAW, synthetic_ladder


def test_noise_free_ladder_follows_the_law():
    ladder = synthetic_ladder(noise=0.0)
    law = SYNTHETIC_LAW
    expected = (law["E"] + law["A"] / ladder["params"] ** law["alpha"]
                + law["B"] / ladder["tokens"] ** law["beta"])
    np.testing.assert_allclose(ladder["loss"], expected)
    np.testing.assert_allclose(ladder["flops"], 6 * ladder["params"] * ladder["tokens"])


def test_seeded_and_labelled_synthetic():
    a, b = synthetic_ladder(seed=5), synthetic_ladder(seed=5)
    assert a.equals(b)
    assert not a.equals(synthetic_ladder(seed=6))
    assert (a["source"] == "synthetic").all()
