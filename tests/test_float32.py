"""float32 inputs: quadratic forms, log-sum-exps and Tweedie in float64 internally, float32 out."""

import numpy as np
import pytest

import statphys_diffusion as sd


def test_the_quoted_float32_cases():
    gm = sd.GaussianMixture.isotropic([[-1.0], [3.0]], 0.1)
    d32 = gm.denoise(np.ones((1, 1), np.float32), 20.0)
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, gm.denoise(np.ones((1, 1)), 20.0), rtol=1e-6)
    rng = np.random.default_rng(0)
    d = 512
    covs = np.stack([np.eye(d) * v for v in (0.5, 2.0)]) + 0.01 * np.eye(d)
    full = sd.GaussianMixture.full(rng.standard_normal((2, d)), covs, labels=[0, 1])
    x = rng.standard_normal((3, d))
    p32, p64 = full.class_posterior(x.astype(np.float32), 20.0), full.class_posterior(x, 20.0)
    np.testing.assert_allclose(p32, p64, atol=1e-6)


def _models(rng):
    u, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    return {
        "isotropic d=1 (small-d kernel)": sd.GaussianMixture.isotropic([[-1.0], [3.0]], [0.1, 0.3], labels=[0, 1]),
        "full d=3 (small-d kernel)": sd.GaussianMixture.full(
            rng.standard_normal((2, 3)), np.stack([np.eye(3) * 0.2, np.eye(3) * 1.5]), labels=[0, 1]
        ),
        "isotropic d=20 (streaming)": sd.GaussianMixture.isotropic(rng.standard_normal((3, 20)), 0.2, labels=[0, 1, 1]),
        "diagonal d=20 (generic)": sd.GaussianMixture.diagonal(
            rng.standard_normal((2, 20)), rng.uniform(0.1, 2, (2, 20)), labels=[0, 1]
        ),
        "full d=20 (generic)": sd.GaussianMixture.full(
            rng.standard_normal((2, 20)), np.stack([np.eye(20) * 0.3, np.eye(20) * 2.0]), labels=[0, 1]
        ),
        "low-rank d=20 (generic)": sd.GaussianMixture.low_rank(
            rng.standard_normal((2, 20)), np.stack([u, u]), np.array([[2.0, 1.0, 0.5]] * 2), 0.05, labels=[0, 1]
        ),
        "empirical d=20": sd.EmpiricalDistribution(rng.standard_normal((50, 20)), labels=np.arange(50) % 2),
    }


@pytest.mark.parametrize("t", [0.5, 5.0, 20.0])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_float32_inputs_give_the_float64_answer_for_every_model_kind(t, scale):
    """Inputs are the same float32 values in both runs, so only internal precision differs.
    Tolerances: float32 output rounding (1e-6 of the output scale) for denoisers, 1e-6 absolute for
    posteriors."""
    rng = np.random.default_rng(1)
    for name, m in _models(rng).items():
        x32 = (scale * rng.standard_normal((4, m.dim))).astype(np.float32)
        x64 = x32.astype(np.float64)
        d32, d64 = m.denoise(x32, t), m.denoise(x64, t)
        assert d32.dtype == np.float32, name
        np.testing.assert_allclose(d32, d64, rtol=2e-6, atol=2e-6 * np.abs(d64).max(), err_msg=name)
        np.testing.assert_allclose(m.class_posterior(x32, t), m.class_posterior(x64, t), atol=1e-6, err_msg=name)


def test_extreme_finite_inputs_raise_instead_of_returning_nan():
    """The quoted silent-NaN cases: squared norms that overflow float64 are refused by name; a result
    that still overflows is reported instead of returned."""
    # named by the user's argument, "points" (issue 32; the internal "means" before)
    with pytest.raises(ValueError, match="^points: entries up to 1e"):
        sd.EmpiricalDistribution(np.full((3, 16), 1e160))
    with pytest.raises(ValueError, match="^means: entries up to 1e"):
        sd.GaussianMixture.isotropic(np.full((3, 16), 1e160), 1.0)
    emp = sd.EmpiricalDistribution(np.random.default_rng(0).standard_normal((5, 16)))
    with pytest.raises(ValueError, match="x: entries up to 1e"):
        emp.score(np.full((1, 16), 1e200), 0.5)
    with pytest.raises(ValueError, match="x: entries up to 1e"):
        sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1).denoise(np.full((1, 1), 1e200), 0.5)
    with pytest.raises(ValueError, match="overflowed float64"):
        sd.GaussianMixture.isotropic(np.zeros((2, 16)), 1e308).score(np.zeros((1, 16)), 0.5)
    # a huge variance in 1-D is still computed correctly: score = sum_k r_k (a mu_k - x) / S_k
    g = sd.GaussianMixture.isotropic([[0.0], [1.0]], 1e308)
    a2, s2 = np.exp(-1.0), -np.expm1(-1.0)
    assert g.score(np.zeros((1, 1)), 0.5)[0, 0] == pytest.approx(0.5 * np.exp(-0.5) / (a2 * 1e308 + s2), rel=1e-6)


def test_float32_points_are_stored_once_and_float64_queries_are_exact():
    # EmpiricalDistribution keeps float32 points as its one copy (no float64 copy while the queries are
    # float32), and a float64 query gives exactly what the same points given in float64 give
    rng = np.random.default_rng(0)
    p32 = rng.standard_normal((300, 20)).astype(np.float32)
    e32 = sd.EmpiricalDistribution(p32)
    e64 = sd.EmpiricalDistribution(p32.astype(np.float64))
    assert e32.points.dtype == np.float32
    x = rng.standard_normal((7, 20))
    t = 0.3
    e32.score(x.astype(np.float32), t)
    e32.denoise(x.astype(np.float32), t)
    assert not any(v.dtype == np.float64 and v.size == p32.size for v in e32._mu_cache.values())
    for name in ("score", "denoise", "log_prob"):
        np.testing.assert_array_equal(getattr(e32, name)(x, t), getattr(e64, name)(x, t), err_msg=name)
    v = rng.standard_normal((7, 20))
    np.testing.assert_array_equal(e32.hvp(x, t, v), e64.hvp(x, t, v))
    np.testing.assert_array_equal(e32.mean(), e64.mean())
    np.testing.assert_array_equal(e32.sample(5, t, rng=1).x, e64.sample(5, t, rng=1).x)
