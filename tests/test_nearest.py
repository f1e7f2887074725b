"""Nearest-neighbour memorisation metric against brute force, and collapse along trajectories."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import statphys_diffusion as sd


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 300), chunk=st.integers(1, 64), k=st.integers(1, 3))
def test_streamed_neighbours_match_brute_force(seed, n, chunk, k):
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((n, 7))
    x = rng.standard_normal((20, 7))
    k = min(k, n)
    nn = sd.nearest_neighbours(x, train, k=k, chunk=chunk)
    ref = cdist(x, train)
    np.testing.assert_allclose(nn.distances, np.sort(ref, axis=1)[:, :k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(ref, nn.indices, axis=1), nn.distances, rtol=1e-12)


def test_ratio_flags_copies_and_fraction_interval():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((500, 50))
    copies = train[:60] + 0.01 * rng.standard_normal((60, 50))  # near-copies: ratio ~ 0.001
    fresh = rng.standard_normal((140, 50))  # new points: ratio close to 1 in 50-D
    nn = sd.nearest_neighbours(np.vstack([copies, fresh]), train)
    r = nn.ratio
    assert np.all(r[:60] < 0.05) and np.all(r[60:] > 1 / 3)
    np.testing.assert_array_equal(nn.indices[:60, 0], np.arange(60))
    frac, lo, hi = sd.memorized_fraction(r, rng=np.random.default_rng(0))
    assert frac == pytest.approx(0.3) and lo < 0.3 < hi and hi - lo < 0.2
    exact = sd.nearest_neighbours(train[:3], train)
    np.testing.assert_array_equal(exact.ratio, 0.0)


def test_trajectory_collapse_on_a_sampled_empirical_chain():
    # DDPM chains of the exact empirical model of 20 well-separated points: every chain ends on a
    # training point, and its nearest point stops changing before the end
    rng = np.random.default_rng(2)
    train = 3 * rng.standard_normal((20, 10))
    emp = sd.EmpiricalDistribution(train)
    res = sd.samplers.DDPMAncestral(200).sample(emp, n=50, t_start=3.0, t_end=1e-3, rng=rng, return_trajectory=True)
    t_c, idx = sd.trajectory_collapse_times(res.trajectory, res.times, train, emp.schedule)
    assert t_c.shape == (50,) and idx.shape == (201, 50)
    assert np.all(t_c >= res.times[-1]) and np.all(t_c <= res.times[0])
    nn = sd.nearest_neighbours(res.x, train)
    np.testing.assert_array_equal(idx[-1], nn.indices[:, 0])
    assert np.all(nn.ratio < 1 / 3)  # memorised
    # the annealed collapse time of these data (d = 10: no sharp transition) sits inside the
    # 5-95% range of the measured ones (0.88 to 1.95 against 1.14 for this seed)
    lam = np.linalg.eigvalsh(np.cov(train.T))
    assert np.quantile(t_c, 0.05) < sd.collapse_time(20, lam) < np.quantile(t_c, 0.95)


def test_bad_input():
    train = np.zeros((5, 3))
    with pytest.raises(ValueError, match="train"):
        sd.nearest_neighbours(np.zeros((2, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="columns"):
        sd.nearest_neighbours(np.zeros((2, 4)), train)
    with pytest.raises(ValueError, match="k must"):
        sd.nearest_neighbours(np.zeros((2, 3)), train, k=6)
    with pytest.raises(ValueError, match="NaN"):
        sd.nearest_neighbours(np.full((2, 3), np.nan), train)
    with pytest.raises(ValueError, match="threshold"):
        sd.memorized_fraction([0.1, 0.5], threshold=0)
    with pytest.raises(ValueError, match="decreasing"):
        sd.trajectory_collapse_times(np.zeros((3, 2, 3)), [0.1, 0.2, 0.3], train, sd.OrnsteinUhlenbeck())
    with pytest.raises(ValueError, match="one entry per"):
        sd.trajectory_collapse_times(np.zeros((3, 2, 3)), [0.3, 0.2], train, sd.OrnsteinUhlenbeck())


def test_wilson_interval_closed_form_and_coverage():
    # all memorised: p = 1, lower = n / (n + z^2), upper = 1
    frac, lo, hi = sd.memorized_fraction(np.zeros(200), method="wilson")
    z = 1.959963984540054
    assert frac == 1.0 and hi == 1.0 and lo == pytest.approx(200 / (200 + z * z), rel=1e-12)
    # coverage of the 95% interval by simulation (binomial p = 0.3, n = 100): 2000 repetitions
    rng = np.random.default_rng(0)
    cover = 0
    for _ in range(2000):
        r = np.where(rng.random(100) < 0.3, 0.0, 1.0)
        _, lo, hi = sd.memorized_fraction(r, method="wilson")
        cover += lo <= 0.3 <= hi
    assert 0.93 < cover / 2000 < 0.97
    with pytest.raises(ValueError, match="method"):
        sd.memorized_fraction([0.1], method="exact")
