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
    man = sd.LinearManifold.random(12, 3, lam, rng=rng)
    x = man.sample(50, t, rng=rng).x
    model = _DenoiserOnly(man) if wrap else man
    tj = sd.tangent_jacobian(model, x, t, man.basis, rng=rng)
    a, s2 = float(man.schedule.alpha(t)), float(man.schedule.sigma2(t))
    closed = a * lam / (a * a * lam + s2)  # posterior covariance alpha/sigma^2 * lam sigma^2/(alpha^2 lam + sigma^2)
    # exact hvp: rounding only; central differences (h ~ 1e-4 |x|) of a linear map: rounding / h ~ 1e-11
    tol = 1e-12 if not wrap else 1e-7
    np.testing.assert_allclose(tj.tangent, np.broadcast_to(closed, tj.tangent.shape), rtol=tol, atol=tol)
    np.testing.assert_allclose(tj.normal, 0.0, atol=tol)
    np.testing.assert_allclose(tj.ratio(man.denoiser_jacobian_eigenvalues(t)), 1.0, rtol=tol)
    assert tj.retained_count(man.denoiser_jacobian_eigenvalues(t)) == 3


def test_empirical_model_loses_directions_with_few_points_and_keeps_them_with_many():
    rng = np.random.default_rng(1)
    lam = np.array([4.0, 1.0, 0.25, 0.0625])
    man = sd.LinearManifold.random(30, 4, lam, rng=rng)
    t = 0.01
    ref = man.denoiser_jacobian_eigenvalues(t)
    q = man.sample(300, t, rng=rng).x
    few = sd.tangent_jacobian(sd.EmpiricalDistribution(man.sample(30, 0.0, rng=rng).x0), q, t, man.basis)
    many = sd.tangent_jacobian(sd.EmpiricalDistribution(man.sample(3000, 0.0, rng=rng).x0), q, t, man.basis)
    # the empirical posterior covariance lies in the span of the training points: no normal part
    assert np.abs(few.normal).max() < 1e-8 and np.abs(many.normal).max() < 1e-8
    # with 3000 points every direction keeps at least 80% of the exact posterior variance,
    # with 30 points the smallest-variance direction keeps less than half of it
    assert np.all(many.ratio(ref) > 0.8)
    assert few.ratio(ref)[-1] < 0.5 and few.retained_count(ref) < 4


def test_bad_input():
    man = sd.LinearManifold.random(6, 2, [1.0, 0.5], rng=np.random.default_rng(0))
    x = np.zeros((3, 6))
    with pytest.raises(ValueError, match="orthonormal"):
        sd.tangent_jacobian(man, x, 0.5, np.ones((6, 2)))
    with pytest.raises(ValueError, match="shape"):
        sd.tangent_jacobian(man, np.zeros((3, 5)), 0.5, man.basis)
    with pytest.raises(ValueError, match="n_normal_probes"):
        sd.tangent_jacobian(man, x, 0.5, man.basis, n_normal_probes=-1)
    with pytest.raises(ValueError, match="denoise"):
        sd.tangent_jacobian(object(), x, 0.5, man.basis)
    tj = sd.tangent_jacobian(man, x, 0.5, man.basis)
    with pytest.raises(ValueError, match="reference"):
        tj.ratio(np.ones(3))


# ------------------------------------------------------ annealed per-direction prediction
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from statphys_diffusion.theory import geometric as geo  # noqa: E402


def test_tilted_entropy_formula_from_sympy_integrals():
    """K(theta) per direction, E_x KL(p_theta || prior), derived by sympy from the Gaussian integrals."""
    sp = pytest.importorskip("sympy")
    z, x = sp.symbols("z x", real=True)
    lam, th, al, s2 = sp.symbols("lambda theta alpha sigma2", positive=True)
    w = sp.exp(-(z**2) / (2 * lam) - th * (x - al * z) ** 2 / (2 * s2))
    norm = sp.integrate(w, (z, -sp.oo, sp.oo))
    mean = sp.simplify(sp.integrate(z * w, (z, -sp.oo, sp.oo)) / norm)
    var = sp.simplify(sp.integrate(z**2 * w, (z, -sp.oo, sp.oo)) / norm - mean**2)
    a = al**2 * lam / s2
    assert sp.simplify(var - lam / (1 + th * a)) == 0
    # KL(N(mean, var) || N(0, lam)), averaged over x ~ N(0, alpha^2 lam + s2)
    kl = (var / lam - 1 - sp.log(var / lam) + mean**2 / lam) / 2
    ex2 = al**2 * lam + s2
    kl_avg = sp.expand(kl).subs(x**2, ex2)  # kl is quadratic in x with no linear term
    assert not kl_avg.has(x)
    formula = (sp.log(1 + th * a) - th * a / (1 + th * a) + th**2 * a * (1 + a) / (1 + th * a) ** 2) / 2
    assert sp.simplify(kl_avg - formula) == 0
    # theta = 1: the mutual information I(z; x_t) = 1/2 log(1 + snr lambda)
    assert sp.simplify(formula.subs(th, 1) - sp.log(1 + a) / 2) == 0
    # numerical agreement with the package's K
    vals = {lam: 0.7, th: 0.3, al: 0.9, s2: 0.19}
    assert float(formula.subs(vals)) == pytest.approx(geo._kl(0.3, np.array([0.81 * 0.7 / 0.19])), rel=1e-12)


@settings(max_examples=40)
@given(
    st.lists(st.floats(0.01, 10.0), min_size=2, max_size=6),
    st.floats(np.log(3.0), np.log(1e6)),
    st.floats(1e-4, 2.0),
)
def test_retained_fraction_properties(lams, log_n, t):
    lam = np.sort(np.array(lams))
    g = sd.geometric_memorization(np.exp(log_n), lam, t)
    rho = g.retained[0]
    assert np.all(rho > 0) and np.all(rho <= 1 + 1e-12)
    # lower variance is never better retained (Gaussian latents)
    assert np.all(np.diff(rho) >= -1e-12)
    # more data never loses more
    more = sd.geometric_memorization(4 * np.exp(log_n), lam, t).retained[0]
    assert np.all(more >= rho - 1e-12)
    # not frozen exactly when log N >= I(z; x_t) = 1/2 sum log(1 + snr lambda)
    info = 0.5 * np.sum(np.log1p(float(sd.OrnsteinUhlenbeck().snr(t)) * lam))
    assert (g.theta[0] == 1.0) == (log_n >= info)


def test_t_to_zero_limit_is_continuous():
    lam = np.array([4.0, 1.0, 0.25, 0.0625])
    g = sd.geometric_memorization(500, lam, [0.0, 1e-7])
    # theta a_k -> c lambda_k with corrections O(1/a) ~ 1e-7 here
    np.testing.assert_allclose(g.retained[0], g.retained[1], rtol=1e-5)


@pytest.mark.parametrize("t", [0.0, 0.05, 0.5])
def test_critical_sizes_and_times_are_where_rho_crosses_the_level(t):
    lam = np.array([3.0, 1.0, 0.3, 0.1])
    for level in (0.5, 0.8):
        nk = sd.direction_critical_n(lam, t, level=level)
        for k in range(lam.size):
            if nk[k] >= 2:
                rho = sd.geometric_memorization(nk[k], lam, t).retained[0, k]
                assert rho == pytest.approx(level, rel=1e-8)
    n = 200
    tk = sd.direction_critical_time(n, lam)
    assert np.all(np.diff(tk) >= 0)  # lower variance lost earlier in forward time (larger t)
    for k in range(lam.size):
        if tk[k] > 0:
            assert sd.geometric_memorization(n, lam, tk[k]).retained[0, k] == pytest.approx(0.5, rel=1e-7)
            assert sd.geometric_memorization(n, lam, 0.9 * tk[k]).retained[0, k] < 0.5
        else:
            assert sd.geometric_memorization(n, lam, 0.0).retained[0, k] >= 0.5


def test_prediction_against_the_exact_empirical_model():
    """Monte Carlo of the exact empirical posterior in m = 40 latent dimensions (4 groups of 10).

    The annealed REM is exact for m -> infinity at fixed log N / m; at m = 40 it
    overestimates retention by 5-30 % (finite-size freezing), so the tolerance is
    a 40 % relative band plus the ordering of the groups, and the weight factor
    E[1 - sum_i w_i^2] against theta*. 4000 queries because the Jacobian is heavy-tailed
    (rare queries between two training points carry the mean).
    """
    rng = np.random.default_rng(0)
    lam = np.repeat([4.0, 1.0, 0.25, 0.0625], 10)
    n, t, m = 3000, 0.05, 40
    z = rng.standard_normal((n, m)) * np.sqrt(lam)
    emp = sd.EmpiricalDistribution(z)
    al, s2 = np.exp(-t), 1 - np.exp(-2 * t)
    x = al * rng.standard_normal((4000, m)) * np.sqrt(lam) + np.sqrt(s2) * rng.standard_normal((4000, m))
    w = emp.component_posterior(x, t)
    mean = w @ z
    var = w @ z**2 - mean**2
    exact = lam * s2 / (al**2 * lam + s2)
    measured = (var / exact).mean(0).reshape(4, 10).mean(1)
    g = sd.geometric_memorization(n, lam, t)
    predicted = g.retained[0].reshape(4, 10).mean(1)
    assert np.all(np.diff(measured) < 0)
    np.testing.assert_allclose(measured, predicted, rtol=0.4)
    assert (1 - (w**2).sum(1)).mean() == pytest.approx(g.theta[0], rel=0.4)


def test_geometric_memorization_bad_input():
    with pytest.raises(ValueError, match="n_points"):
        sd.geometric_memorization(1, [1.0], 0.1)
    with pytest.raises(ValueError, match="variances"):
        sd.geometric_memorization(10, [1.0, 0.0], 0.1)
    with pytest.raises(ValueError, match="variances"):
        sd.direction_critical_n([1.0, np.nan])
    with pytest.raises(ValueError, match="times"):
        sd.geometric_memorization(10, [1.0], -0.1)
    with pytest.raises(ValueError, match="level"):
        sd.direction_critical_time(10, [1.0, 2.0], level=1.0)
    with pytest.raises(ValueError, match="schedule"):
        sd.direction_critical_n([1.0], 0.1, schedule="ou")
