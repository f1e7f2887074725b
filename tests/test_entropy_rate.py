"""dH(Y | X_t)/dt: the pathwise derivative against independent references.

References: central differences of the H(Y | X_t) quadrature (a different
integrand, h itself), central differences of the common-random-number Monte
Carlo estimator (same draws, so the difference quotient is the derivative of
that estimator up to O(delta^2)), and quadrature against Monte Carlo within
4 standard errors.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


def _mix1d(means, var, weights, labels):
    return sd.GaussianMixture.isotropic(np.asarray(means, float)[:, None], var, weights, labels=labels)


@settings(max_examples=6, deadline=None)
@given(sep=st.floats(0.5, 3.0), w0=st.floats(0.2, 0.8), var=st.floats(0.01, 0.5))
def test_quadrature_rate_is_the_derivative_of_the_quadrature_entropy(sep, w0, var):
    m = _mix1d([-sep / 2, sep / 2], var, [w0, 1 - w0], [0, 1])
    ts = np.geomspace(0.01, 3.0, 7)
    est = sd.entropy_rate(m, ts, n=200, rng=np.random.default_rng(0))
    assert est.method == "quadrature"
    # relative step 1e-4: truncation ~1e-8 |H'''| t^2, rounding ~1e-10 / 1e-4 = 1e-6 at most
    d = 1e-4
    fd = (sd.conditional_entropy(m, ts * (1 + d)).value - sd.conditional_entropy(m, ts * (1 - d)).value) / (2 * d * ts)
    np.testing.assert_allclose(est.rate, fd, atol=1e-5, rtol=1e-5)
    # data processing: H non-decreasing in t, so its rate is non-negative
    assert np.all(est.rate > -1e-10)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16), t=st.floats(0.02, 2.0))
def test_quadrature_and_monte_carlo_rates_agree(seed, t):
    rng = np.random.default_rng(seed)
    means = np.sort(rng.uniform(-2, 2, 3))
    m = _mix1d(means, rng.uniform(0.02, 0.3, 3), rng.dirichlet(np.ones(3) * 3), [0, 1, 2])
    q = sd.entropy_rate(m, [t], n=10)
    mc = sd.entropy_rate(m, [t], n=20000, method="monte_carlo", rng=rng)
    assert abs(q.rate[0] - mc.rate[0]) <= 4 * mc.rate_stderr[0] + 1e-9
    for c in range(3):
        assert abs(q.class_rate[c, 0] - mc.class_rate[c, 0]) <= 4 * mc.class_rate_stderr[c, 0] + 1e-9


@pytest.mark.parametrize("kind", ["full", "isotropic", "lowrank", "empirical"])
def test_monte_carlo_rate_is_the_derivative_of_the_crn_estimator(kind):
    rng = np.random.default_rng(3)
    d, k = 4, 5
    mu = rng.standard_normal((k, d))
    labels = [0, 1, 1, 2, 2]
    if kind == "full":
        a = rng.standard_normal((k, d, d))
        m = sd.GaussianMixture.full(mu, a @ a.transpose(0, 2, 1) / d + 0.05 * np.eye(d), labels=labels)
    elif kind == "isotropic":
        m = sd.GaussianMixture.isotropic(mu, rng.uniform(0.05, 0.3, k), labels=labels)
    elif kind == "lowrank":
        basis = np.linalg.qr(rng.standard_normal((k, d, 2)))[0]
        m = sd.GaussianMixture.low_rank(mu, basis, rng.uniform(0.1, 1, (k, 2)), 0.02, labels=labels)
    else:
        m = sd.EmpiricalDistribution(rng.standard_normal((40, 12)), labels=np.arange(40) % 3)
    ts = np.array([0.05, 0.3, 1.0])
    est = sd.entropy_rate(m, ts, n=500, rng=np.random.default_rng(7))
    assert est.method == "monte_carlo"
    dt = 1e-5 * ts
    hp = sd.conditional_entropy(m, ts + dt, n=500, rng=np.random.default_rng(7)).value
    hm = sd.conditional_entropy(m, ts - dt, n=500, rng=np.random.default_rng(7)).value
    np.testing.assert_allclose(est.rate, (hp - hm) / (2 * dt), rtol=1e-5, atol=1e-7)
    h0 = sd.conditional_entropy(m, ts, n=500, rng=np.random.default_rng(7)).value
    np.testing.assert_allclose(est.entropy, h0, rtol=1e-12, atol=1e-12)


def test_peak_time_matches_a_brute_force_scan():
    # symmetric pair: the peak of dH/dt from the estimator's parabolic refinement against
    # the argmax of finite differences of H on a 20x finer grid
    m = _mix1d([-1.0, 1.0], 0.1, [0.5, 0.5], [0, 1])
    coarse = np.geomspace(0.02, 2.0, 25)
    est = sd.entropy_rate(m, coarse, n=200, rng=np.random.default_rng(0))
    fine = np.geomspace(0.02, 2.0, 500)
    h = sd.conditional_entropy(m, fine).value
    mid = np.sqrt(fine[1:] * fine[:-1])
    t_star = mid[np.argmax(np.diff(h) / np.diff(fine))]
    # both classes are mirror images: same peak; grid spacing of the fine scan ~0.9% in t
    assert abs(est.peak_time[0] - est.peak_time[1]) < 1e-6
    assert abs(np.log(est.peak_time[0] / t_star)) < 0.02


def test_per_class_profiles_average_to_the_total_and_generated_classes():
    rng = np.random.default_rng(5)
    m = sd.GaussianMixture.isotropic(rng.standard_normal((4, 3)) * 2, 0.05, [0.1, 0.2, 0.3, 0.4], labels=[0, 0, 1, 2])
    est = sd.entropy_rate(m, np.geomspace(0.01, 3, 12), n=4000, rng=rng)
    w = m.class_weights
    # the total is the prior-weighted class average only up to sampling noise (class counts are random)
    comb = w @ est.class_rate
    assert np.all(np.abs(comb - est.rate) <= 4 * est.rate_stderr + 1e-12)
    # classes 2 standard deviations x 30 apart at t=0: generated class = true class for ~all draws
    assert est.generated_counts.sum() == 4000
    np.testing.assert_allclose(est.generated_rate, est.class_rate, rtol=0.05, atol=0.02)
    assert np.all(est.peak_time_stderr >= 0) and np.all(np.isfinite(est.peak_time))
    rows = est.to_rows()
    assert len(rows) == 12 * 4 and {r["class"] for r in rows} == {"all", 0, 1, 2}


def test_bad_input():
    unl = sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="labelled"):
        sd.entropy_rate(unl, [0.5])
    empty = _mix1d([0.0, 1.0, 2.0], 0.1, [0.5, 0.5, 0.0], [0, 1, 2])
    with pytest.raises(ValueError, match="empty class"):
        sd.entropy_rate(empty, [0.5])
    m = _mix1d([0.0, 1.0], 0.1, [0.5, 0.5], [0, 1])
    with pytest.raises(ValueError, match="outside the schedule"):
        sd.entropy_rate(m.with_schedule(sd.VPSDE()), [0.5, 1.5])
    with pytest.raises(ValueError, match="times"):
        sd.entropy_rate(m, [0.0, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        sd.entropy_rate(m, [0.5, 0.2])
    with pytest.raises(ValueError, match="method"):
        sd.entropy_rate(m, [0.5], method="trapezoid")
    with pytest.raises(ValueError, match="n must"):
        sd.entropy_rate(m, [0.5], n=0)
