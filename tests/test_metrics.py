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


def test_frechet_distance_closed_forms():
    from statphys_diffusion.metrics import frechet_distance, frechet_distance_gaussian

    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    assert frechet_distance_gaussian([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0, rel=1e-12)
    # commuting (diagonal) covariances: sum of per-axis 1-D distances
    v1, v2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.1, 0.5])
    ref = np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2) + 1.0
    assert frechet_distance_gaussian([0, 0, 1.0], np.diag(v1), [0, 0, 0.0], np.diag(v2)) == pytest.approx(
        ref, rel=1e-12
    )
    # non-commuting: against scipy.linalg.sqrtm of cov1 cov2
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    ref = np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_distance_gaussian(np.zeros(4), c1, np.zeros(4), c2) == pytest.approx(ref, rel=1e-8)
    # sample version: identical samples give 0, and a shift of 2 along one axis gives 4
    x = rng.standard_normal((500, 3))
    assert abs(frechet_distance(x, x)) < 1e-9
    assert frechet_distance(x, x + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-9)
    with pytest.raises(ValueError, match="same width"):
        frechet_distance(x, x[:, :2])
