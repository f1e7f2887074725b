import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from statphys_diffusion.metrics import sliced_wasserstein, wasserstein_1d


@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 10**6))
def test_wasserstein_1d_matches_scipy(n, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(1.0, 2.0, size=m)
    assert wasserstein_1d(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-10, abs=1e-12)


def test_sliced_wasserstein_of_shift_in_1d_and_isotropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 1))
    assert sliced_wasserstein(x, x + 0.7, n_projections=4) == pytest.approx(0.7, rel=1e-12)
    # in d dims, a shift by vector v gives E_u |u.v| = |v| E|u_1|; check by Monte Carlo on directions
    d = 3
    x = rng.normal(size=(200, d))
    v = np.array([1.0, 0.0, 0.0])
    sw = sliced_wasserstein(x, x + v, n_projections=4000, rng=np.random.default_rng(1))
    assert sw == pytest.approx(0.5, rel=0.03)  # E|u_1| = 1/2 for d = 3; MC error ~1%


def test_bad_input():
    with pytest.raises(ValueError, match="dimension"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x"):
        sliced_wasserstein(np.full((3, 2), np.nan), np.zeros((3, 2)))
