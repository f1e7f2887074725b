"""Jacobian projections on tangent and normal directions: closed forms for the exact manifold."""

import numpy as np
import pytest

import statphys_diffusion as sd


class _DenoiserOnly:
    """Hides hvp so that tangent_jacobian falls back to finite differences of denoise."""

    def __init__(self, model):
        self._m = model
        self.schedule = model.schedule

    def denoise(self, x, t):
        return self._m.denoise(x, t)


@pytest.mark.parametrize("t", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("wrap", [False, True])
def test_exact_manifold_matches_the_closed_form(t, wrap):
    rng = np.random.default_rng(0)
    lam = np.array([3.0, 1.0, 0.2])
    man = sd.LinearManifold.random(12, 3, lam, rng)
    x = man.sample(50, t, rng).x
    model = _DenoiserOnly(man) if wrap else man
    tj = sd.tangent_jacobian(model, t, x, man.basis, rng=rng)
    a, s2 = float(man.schedule.alpha(t)), float(man.schedule.sigma2(t))
    closed = a * lam / (a * a * lam + s2)  # posterior covariance alpha/sigma^2 * lam sigma^2/(alpha^2 lam + sigma^2)
    # exact hvp: rounding only; central differences (h ~ 1e-4 |x|) of a linear map: rounding / h ~ 1e-11
    tol = 1e-12 if not wrap else 1e-7
    np.testing.assert_allclose(tj.tangent, np.broadcast_to(closed, tj.tangent.shape), rtol=tol, atol=tol)
    np.testing.assert_allclose(tj.normal, 0.0, atol=tol)
    np.testing.assert_allclose(tj.ratio(man.denoiser_jacobian_eigenvalues(t)), 1.0, rtol=tol)
    assert tj.retained(man.denoiser_jacobian_eigenvalues(t)) == 3


def test_empirical_model_loses_directions_with_few_points_and_keeps_them_with_many():
    rng = np.random.default_rng(1)
    lam = np.array([4.0, 1.0, 0.25, 0.0625])
    man = sd.LinearManifold.random(30, 4, lam, rng)
    t = 0.01
    ref = man.denoiser_jacobian_eigenvalues(t)
    q = man.sample(300, t, rng).x
    few = sd.tangent_jacobian(sd.EmpiricalDistribution(man.sample(30, 0.0, rng).x0), t, q, man.basis)
    many = sd.tangent_jacobian(sd.EmpiricalDistribution(man.sample(3000, 0.0, rng).x0), t, q, man.basis)
    # the empirical posterior covariance lies in the span of the training points: no normal part
    assert np.abs(few.normal).max() < 1e-8 and np.abs(many.normal).max() < 1e-8
    # with 3000 points every direction keeps at least 80% of the exact posterior variance,
    # with 30 points the smallest-variance direction keeps less than half of it
    assert np.all(many.ratio(ref) > 0.8)
    assert few.ratio(ref)[-1] < 0.5 and few.retained(ref) < 4


def test_bad_input():
    man = sd.LinearManifold.random(6, 2, [1.0, 0.5], np.random.default_rng(0))
    x = np.zeros((3, 6))
    with pytest.raises(ValueError, match="orthonormal"):
        sd.tangent_jacobian(man, 0.5, x, np.ones((6, 2)))
    with pytest.raises(ValueError, match="shape"):
        sd.tangent_jacobian(man, 0.5, np.zeros((3, 5)), man.basis)
    with pytest.raises(ValueError, match="n_normal_probes"):
        sd.tangent_jacobian(man, 0.5, x, man.basis, n_normal_probes=-1)
    with pytest.raises(ValueError, match="denoise"):
        sd.tangent_jacobian(object(), 0.5, x, man.basis)
    tj = sd.tangent_jacobian(man, 0.5, x, man.basis)
    with pytest.raises(ValueError, match="reference"):
        tj.ratio(np.ones(3))
