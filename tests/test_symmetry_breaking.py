"""Symmetry breaking: numerical critical times against closed forms derived here in sympy."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import statphys_diffusion as sd
from statphys_diffusion import theory as th
from statphys_diffusion.testing import schedules

# --- sympy derivation of the critical alpha^2 for two symmetric Gaussians ------------------------
# p_0 = 1/2 N(m, v) + 1/2 N(-m, v) under a VP schedule: p_t components N(+-alpha m, c), c = A v + 1 - A
# with A = alpha^2. At the centre x = 0: s = 0 and H = A m^2 / c^2 - 1 / c. Critical: H + a = 0.
_A, _m, _v = sp.symbols("A m v", real=True)
_c = _A * _v + 1 - _A
_H0 = _A * _m**2 / _c**2 - 1 / _c
# stiffness a_t = -f/g^2 (sde), -2f/g^2 (ode), 0 (potential); f/g^2 = -1/2 for every VP schedule
_STIFF = {"sde": sp.Rational(1, 2), "ode": sp.Integer(1), "potential": sp.Integer(0)}
_ROOTS = {k: sp.solve(sp.numer(sp.together(_H0 + a)), _A) for k, a in _STIFF.items()}


def _closed_form_alpha2(m, v, dynamics):
    """Smallest root A in (0, 1) of the sympy-derived condition, or None."""
    vals = []
    for r in _ROOTS[dynamics]:
        z = complex(r.subs({_m: m, _v: v}).evalf(30))
        if abs(z.imag) < 1e-12 and 1e-12 < z.real < 1 - 1e-12:
            vals.append(z.real)
    return min(vals) if vals else None


def test_sympy_reproduces_the_papers_closed_forms():
    for m in (0.5, 1.0, 2.0):
        assert _closed_form_alpha2(m, 0.0, "sde") == pytest.approx(np.sqrt(m**4 + 1) - m**2, rel=1e-14)
        assert _closed_form_alpha2(m, 0.0, "potential") == pytest.approx(1 / (1 + m**2), rel=1e-14)
        assert th.two_delta_critical_alpha2(m, "sde") == pytest.approx(np.sqrt(m**4 + 1) - m**2, rel=1e-14)
    assert th.two_delta_critical_alpha2(1.0, "sde") == pytest.approx(np.sqrt(2) - 1, rel=1e-15)
    assert _closed_form_alpha2(0.5, 0.0, "ode") == pytest.approx(0.75, rel=1e-14)
    assert _closed_form_alpha2(1.5, 0.0, "ode") is None


VP_SCHEDULES = schedules(kinds=("ou", "vpsde", "linear", "cosine"))


@settings(max_examples=25)
@given(
    st.floats(0.3, 2.5),
    st.floats(0.0, 0.6),
    st.sampled_from(th.DYNAMICS),
    VP_SCHEDULES,
)
def test_critical_time_matches_sympy_closed_form(m, vfrac, dynamics, sch):
    v = vfrac * m * m  # components narrower than their separation
    gm = sd.GaussianMixture.isotropic([[-m], [m]], [v, v], schedule=sch)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = th.symmetry_breaking_time(gm, dynamics)
    # a NaN result always comes with a warning, a time never does
    assert any("returns NaN" in str(w.message) for w in caught) == bool(np.isnan(res.time))
    A = _closed_form_alpha2(m, v, dynamics)
    if A is None:
        assert np.isnan(res.time), res
        return
    snr_ref = A / (1 - A)
    if not (sch.snr(sch.default_t_start) < snr_ref < 1e12):
        # the critical time lies outside the scanned range: no crossing is reported
        assert np.isnan(res.time), res
        return
    t_ref = sch.t_of_snr(snr_ref)
    assert abs(res.time - t_ref) <= 1e-8 * max(1.0, t_ref), (res.time, t_ref)
    assert abs(abs(res.direction[0]) - 1) < 1e-12


def test_ou_two_deltas_numbers():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0)
    assert th.symmetry_breaking_time(gm, "potential").time == pytest.approx(0.5 * np.log(2.0), abs=1e-10)
    assert th.symmetry_breaking_time(gm, "sde").time == pytest.approx(-0.5 * np.log(np.sqrt(2) - 1), abs=1e-10)
    # the SDE instability comes earlier in reverse time (larger t) than the loss of convexity
    assert th.symmetry_breaking_time(gm, "sde").time > th.symmetry_breaking_time(gm, "potential").time


def test_symmetry_breaking_in_higher_dimension_along_data_direction():
    """Deltas at +-m u in d = 5: same critical time as 1-D, unstable direction u."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=5)
    u /= np.linalg.norm(u)
    m = 1.3
    gm = sd.GaussianMixture.isotropic(np.stack([m * u, -m * u]), 0.0)
    res = th.symmetry_breaking_time(gm, "sde")
    assert res.time == pytest.approx(-0.5 * np.log(th.two_delta_critical_alpha2(m, "sde")), abs=1e-9)
    assert abs(abs(res.direction @ u) - 1) < 1e-9


def test_broken_fixed_points_match_tanh_equation_and_are_score_zeros():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0)
    for alpha in (0.5, 0.7, 0.8, 0.95):
        t = -np.log(alpha)
        pts, eig = th.fixed_points_1d(gm, t, "sde")
        ref = th.two_delta_broken_fixed_points(alpha)
        np.testing.assert_allclose(pts, ref, atol=1e-10)
        # they are zeros of x/2 + s (OU: a = 1/2)
        np.testing.assert_allclose(th.fixed_point_residual(gm, pts[:, None], t, "sde"), 0, atol=1e-9)
        broken = alpha**2 > np.sqrt(2) - 1
        assert pts.size == (3 if broken else 1)
        # stability: centre unstable after the break, the two outer points stable
        centre = np.argmin(np.abs(pts))
        assert (eig[centre] > 0) == broken
        assert np.all(np.delete(eig, centre) < 0)


@given(st.integers(2, 4), st.integers(0, 10**6), st.floats(0.05, 2.0))
def test_potential_fixed_points_are_score_zeros_with_matching_curvature(k, seed, t):
    rng = np.random.default_rng(seed)
    gm = sd.GaussianMixture.isotropic(rng.uniform(-3, 3, (k, 1)), rng.uniform(0.01, 0.3, k))
    pts, eig = th.fixed_points_1d(gm, t, "potential")
    assert np.all(np.abs(gm.score(pts[:, None], t)[:, 0]) < 1e-8)
    np.testing.assert_allclose(eig, gm.hessian(pts[:, None], t)[:, 0, 0], rtol=1e-12)
    # brute force: local maxima of log p on a fine grid are exactly the stable (negative-curvature) points
    grid = np.linspace(pts.min() - 1, pts.max() + 1, 200001)[:, None]
    lp = gm.log_prob(grid, t)
    maxima = grid[1:-1, 0][(lp[1:-1] > lp[:-2]) & (lp[1:-1] > lp[2:])]
    np.testing.assert_allclose(np.sort(pts[eig < 0]), np.sort(maxima), atol=1e-4)
    # critical points alternate maximum / minimum
    assert np.all(np.sign(eig[:-1]) != np.sign(eig[1:]))


@given(VP_SCHEDULES | schedules(kinds=("ve", "flow")), st.floats(0.05, 50.0))
def test_speciation_time_matches_root_finding(sch, lam):
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    cov = (q * np.array([lam, 0.5 * lam, 0.01])) @ q.T
    gm = sd.GaussianMixture.full(np.zeros((1, 3)), cov[None], schedule=sch)
    lo, hi = sch.t_min + 1e-12, sch.default_t_start

    def g(t):
        return sch.alpha(t) ** 2 * lam - sch.sigma2(t)

    if g(lo) * g(hi) > 0:
        return
    ref = brentq(g, lo, hi, xtol=1e-14)
    assert th.speciation_time(gm) == pytest.approx(ref, rel=1e-8, abs=1e-10)


def test_ou_speciation_closed_form():
    assert th.speciation_time(top_eigenvalue=3.0, schedule=sd.OrnsteinUhlenbeck()) == pytest.approx(0.5 * np.log(4.0))


def test_bad_input():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0)
    with pytest.raises(ValueError, match="dynamics"):
        th.symmetry_breaking_time(gm, "langevin")
    # the PF-ODE drift x + s has no fixed point at large t for data with a non-zero mean
    shifted = sd.GaussianMixture.isotropic([[2.0], [4.0]], 0.1)
    with pytest.raises(ValueError, match="centre"):
        th.central_fixed_point(shifted, 10.0, "ode")
    with pytest.raises(ValueError, match="top_eigenvalue"):
        th.speciation_time(top_eigenvalue=-1.0, schedule=sd.OrnsteinUhlenbeck())
    with pytest.raises(ValueError, match="1-D"):
        th.fixed_points_1d(sd.GaussianMixture.isotropic(np.zeros((1, 2)), 1.0), 0.5)
    with pytest.raises(ValueError, match="t must be > 0"):
        th.central_fixed_point(gm, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        th.two_delta_broken_fixed_points(1.5)


def test_gaussian_late_init_moments_and_sources():
    rng = np.random.default_rng(3)
    gm = sd.GaussianMixture.diagonal([[0.0, 1.0], [2.0, -1.0]], [[0.3, 0.2], [0.5, 0.1]], [0.25, 0.75])
    t = 0.8
    gli = sd.gaussian_late_init(gm, t)
    a, s2 = float(gm.schedule.alpha(t)), float(gm.schedule.sigma2(t))
    np.testing.assert_allclose(gli.mean, a * gm.mean(), rtol=1e-14)
    np.testing.assert_allclose(gli.cov, a * a * gm.covariance() + s2 * np.eye(2), rtol=1e-12)
    # the forward process's exact x_t has the same first two moments (Monte Carlo, 5 standard errors)
    xt = gm.sample(200_000, t, rng=rng).x
    np.testing.assert_allclose(xt.mean(0), gli.mean, atol=5 * np.sqrt(np.diag(gli.cov).max() / 200_000))
    draws = gli.sample(200_000, rng=rng)
    np.testing.assert_allclose(np.cov(draws.T), gli.cov, atol=5 * np.sqrt(2 / 200_000) * np.diag(gli.cov).max())
    pts = gm.sample(5000, 0.0, rng=rng).x0
    from_points = sd.gaussian_late_init(pts, t, gm.schedule)
    np.testing.assert_allclose(from_points.mean, a * pts.mean(0), rtol=1e-12)
    same = sd.gaussian_late_init((gm.mean(), gm.covariance()), t, gm.schedule)
    np.testing.assert_allclose(same.cov, gli.cov, rtol=1e-12)


def test_gaussian_late_init_bad_input():
    ou = sd.OrnsteinUhlenbeck()
    with pytest.raises(ValueError, match="t_late"):
        sd.gaussian_late_init((np.zeros(2), np.eye(2)), 0.0, ou)
    with pytest.raises(ValueError, match="t_late"):
        sd.gaussian_late_init((np.zeros(2), np.eye(2)), 2.0, sd.VPSDE())
    with pytest.raises(ValueError, match="semi-definite"):
        sd.gaussian_late_init((np.zeros(2), np.array([[1.0, 0.0], [0.0, -1.0]])), 0.5, ou)
    with pytest.raises(ValueError, match="symmetric"):
        sd.gaussian_late_init((np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]])), 0.5, ou)
    with pytest.raises(ValueError, match="schedule"):
        sd.gaussian_late_init((np.zeros(2), np.eye(2)), 0.5)
    with pytest.raises(ValueError, match="shape"):
        sd.gaussian_late_init((np.zeros(3), np.eye(2)), 0.5, ou)


def test_cloning_agrees_with_exact_posterior_overlap():
    """With the exact score, phi(t_b) = E[sum_c p(c | x_tb)^2]; cloning must match within 4 standard errors."""
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.05, labels=[0, 1])
    tb = [0.2, 0.5, 1.0]
    res = th.cloning_agreement(gm, tb, 2000, rng=np.random.default_rng(0), n_steps=300, t_start=6.0)
    ref, ref_se = th.exact_cloning_agreement(gm, tb, 20000, rng=np.random.default_rng(1))
    assert np.all(np.abs(res.phi - ref) < 4 * np.hypot(res.phi_stderr, ref_se) + 0.01)  # + Euler-Maruyama bias
    assert np.all(np.diff(res.phi) < 0)  # agreement decays with the branch time
    with pytest.raises(ValueError, match="branch_times"):
        th.cloning_agreement(gm, [7.0], 10, rng=np.random.default_rng(0), t_start=6.0)


def test_cloning_streams_instead_of_storing_the_trajectory():
    """1,000 steps of 300 pairs in d = 64: a stored trajectory would be 1,001 x 300 x 64 x 8 B = 154 MB;
    the streamed run keeps a few states (peak traced allocation under a tenth of that)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    gm = sd.GaussianMixture.isotropic(rng.standard_normal((2, 64)), 0.05, labels=[0, 1])
    tracemalloc.start()
    th.cloning_agreement(gm, [0.3, 1.0], 300, rng=np.random.default_rng(1), n_steps=1000, t_start=4.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1001 * 300 * 64 * 8 / 10


def test_large_d_path_lanczos_and_minres_match_closed_form():
    """d = 600 > 512: Lanczos on the Hessian operator and Newton-MINRES for the fixed point."""
    rng = np.random.default_rng(2)
    u = rng.normal(size=600)
    u /= np.linalg.norm(u)
    m = 1.2
    b = rng.normal(size=600)
    b -= (b @ u) * u  # an offset orthogonal to u keeps the u-direction problem that of the closed form
    emp = sd.EmpiricalDistribution(np.stack([m * u, -m * u]) + b)  # the centre is not 0
    res = th.symmetry_breaking_time(emp, "sde", n_grid=30)
    assert res.time == pytest.approx(-0.5 * np.log(th.two_delta_critical_alpha2(m, "sde")), abs=1e-7)
    assert abs(abs(res.direction @ u) - 1) < 1e-6
