"""Attractor census of the exact empirical denoiser: memorised, spurious, generalising."""

import numpy as np
import pytest

import statphys_diffusion as sd


def _separated(n=12, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return sd.EmpiricalDistribution(4.0 * rng.standard_normal((n, d))), rng


def test_every_training_point_is_an_attractor_at_small_t_and_none_at_large_t():
    emp, rng = _separated()
    train = emp.points
    starts = np.repeat(train, 5, axis=0) + 0.5 * rng.standard_normal((60, 8))
    small = sd.attractor_census(emp, starts, 0.05, rng=rng)
    # points ~ 4 sqrt(2 d) = 16 apart, noise sigma_t ~ 0.3: each start returns to its own point
    assert small.n_memorized == 12 and small.n_spurious == 0 and small.unresolved_fraction == 0
    np.testing.assert_allclose(small.basin.sum(), 1.0)
    assert np.all(small.spectral_radius < 1e-3)  # J = alpha/sigma^2 Cov[x0 | x] ~ 0 on an atom
    np.testing.assert_array_equal(np.sort(small.nearest_index), np.arange(12))
    large = sd.attractor_census(emp, starts, 5.0, rng=rng)
    # at large t the posterior is nearly uniform: one attractor near the data mean, not a training point
    assert large.n_memorized == 0 and large.points.shape[0] == 1 and large.kind[0] == "spurious"
    np.testing.assert_allclose(large.points[0], train.mean(axis=0), atol=0.5)
    assert large.basin[0] == pytest.approx(1.0)


def test_two_close_points_merge_into_a_spurious_state_between_them():
    # 1-D points at +-1: D_t(x) = tanh(alpha x / sigma^2) (for unit points), whose fixed point 0
    # is stable once the slope alpha / sigma^2 < 1, i.e. e^{-t} < 1 - e^{-2t}: t > 0.481
    emp = sd.EmpiricalDistribution([[-1.0], [1.0]])
    starts = np.linspace(-2, 2, 41)[:, None]
    before = sd.attractor_census(emp, starts, 0.3)
    assert before.n_memorized == 2 and before.n_spurious == 0
    after = sd.attractor_census(emp, starts, 0.7)
    assert after.n_memorized == 0 and after.n_spurious == 1
    assert abs(after.points[0, 0]) < 1e-6
    slope = np.exp(-0.7) / (1 - np.exp(-1.4))
    assert after.spectral_radius[0] == pytest.approx(slope, rel=1e-4)


def test_census_works_for_any_denoiser_without_training_set():
    class Linear:
        def denoise(self, x, t):
            return 0.5 * x + 1.0

    c = sd.attractor_census(Linear(), np.random.default_rng(0).standard_normal((10, 3)), 1.0)
    assert c.points.shape == (1, 3) and c.kind[0] == "spurious"
    np.testing.assert_allclose(c.points[0], 2.0, atol=1e-5)
    assert c.spectral_radius[0] == pytest.approx(0.5, rel=1e-6)

    class Expanding:
        def denoise(self, x, t):
            return 2.0 * x

    c = sd.attractor_census(Expanding(), np.ones((4, 2)), 1.0, max_iter=20)
    assert c.unresolved_fraction == 1.0 and c.points.shape[0] == 0


def test_bad_input():
    emp, _ = _separated()
    with pytest.raises(ValueError, match="denoise"):
        sd.attractor_census(object(), np.zeros((2, 8)), 0.5)
    with pytest.raises(ValueError, match="starts"):
        sd.attractor_census(emp, np.zeros(8), 0.5)
    with pytest.raises(ValueError, match="t must be >"):
        sd.attractor_census(emp, np.zeros((2, 8)), 0.0)
    with pytest.raises(ValueError, match="train"):
        sd.attractor_census(emp, np.zeros((2, 8)), 0.5, train=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="NaN"):
        sd.attractor_census(emp, np.full((2, 8), np.nan), 0.5)


def test_old_time_first_order_still_works_with_a_deprecation_warning():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((5, 4)) * 3
    emp = sd.EmpiricalDistribution(pts)
    starts = pts + 0.01 * rng.standard_normal(pts.shape)
    new = sd.attractor_census(emp, starts, 0.05, rng=1)
    with pytest.warns(DeprecationWarning, match=r"attractor_census\(model, x, t\)"):
        old = sd.attractor_census(emp, 0.05, starts, rng=1)
    np.testing.assert_array_equal(old.points, new.points)
    basis = np.eye(4)[:, :2]
    tj_new = sd.tangent_jacobian(emp, starts, 0.05, basis, rng=2)
    with pytest.warns(DeprecationWarning, match=r"tangent_jacobian\(model, x, t\)"):
        tj_old = sd.tangent_jacobian(emp, 0.05, starts, basis, rng=2)
    np.testing.assert_array_equal(tj_old.tangent, tj_new.tangent)
