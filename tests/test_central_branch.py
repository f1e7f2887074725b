"""central_branch and gaussian_instability_time against closed forms and independent root finders.

References:
- two deltas at +-m (1-D, OU): the centre stays at 0 and H_t(0) = alpha^2 m^2 / sigma^4 - 1 / sigma^2
  (module docstring of theory.symmetry_breaking), so the SDE margin is H_t(0) + 1/2;
- unequal weights: every point of the continued branch must be a root of a x + s_t(x) found by
  the brute-force grid-and-bracket search of fixed_points_1d;
- a single Gaussian: the crossing a_t (alpha^2 Lambda + sigma^2) = 1 in closed form on OU
  (t = 1/2 log(Lambda - 1)) and, on a VP schedule in d = 3, symmetry_breaking_time's own Newton +
  Hessian-eigenvalue path on the GaussianMixture.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd
from statphys_diffusion import theory as th

OU = sd.OrnsteinUhlenbeck()


@settings(max_examples=10, deadline=None)
@given(m=st.floats(0.5, 2.0))
def test_symmetric_branch_is_the_centre_with_the_closed_form_margin(m):
    model = sd.EmpiricalDistribution(np.array([[-m], [m]]), schedule=OU)
    ts = np.geomspace(0.05, 3.0, 25)
    b = sd.central_branch(model, ts)
    assert np.all(np.diff(b.times) < 0)
    al2 = np.exp(-2 * b.times)
    s2 = 1 - al2
    expect = al2 * m * m / s2**2 - 1 / s2 + 0.5
    # x* = 0 by symmetry (Newton from the exact centre stays there to rounding)
    np.testing.assert_allclose(b.points[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(b.margin, expect, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b.n_eff, 2.0, rtol=1e-12)
    np.testing.assert_allclose(b.distance_to_centre, 0.0, atol=1e-12)
    np.testing.assert_allclose(b.distance_to_nearest, np.exp(-b.times) * m, rtol=1e-10)
    # crossing by linear interpolation in log t on a 25-point grid: within 2% of the closed form
    t_exact = 0.5 * np.log(1.0 / th.two_delta_critical_alpha2(m))
    assert b.crossing_time == pytest.approx(t_exact, rel=0.02)
    assert not b.imperfect
    assert np.isnan(b.lost_at)


@settings(max_examples=8, deadline=None)
@given(p=st.floats(0.52, 0.8))
def test_asymmetric_branch_is_a_continuous_root_and_flagged_by_the_stated_rule(p):
    model = sd.EmpiricalDistribution(np.array([[-1.0], [1.0]]), weights=[p, 1 - p], schedule=OU)
    ts = np.geomspace(0.02, 3.0, 30)
    b = sd.central_branch(model, ts)
    assert np.all(np.isfinite(b.margin))
    ref_margin = []
    for t, x in zip(b.times, b.points[:, 0]):
        roots, eig = th.fixed_points_1d(model, t)
        k = int(np.argmin(np.abs(roots - x)))
        assert abs(roots[k] - x) < 1e-8
        ref_margin.append(eig[k] / 2.0)  # OU: the drift's eigenvalue is g^2 (a + H), g^2 = 2
    np.testing.assert_allclose(b.margin, ref_margin, rtol=1e-6, atol=1e-9)
    assert np.max(b.margin) < 0
    # at t = 3 the posterior is the prior (within e^-3 of it); the heavier point (at -1) takes the
    # branch: n_eff from 1 / (p^2 + (1-p)^2) down to 1
    assert b.n_eff[0] == pytest.approx(1.0 / (p * p + (1 - p) ** 2), rel=0.05)
    assert b.n_eff[-1] < 1.01
    assert b.points[-1, 0] < 0
    assert np.isnan(b.crossing_time)
    peak = int(np.argmax(ref_margin))
    assert b.imperfect == (0 < peak < len(ref_margin) - 1)
    if p < 0.56:  # a weak asymmetry: the margin rises towards 0 before the branch slides off
        assert b.imperfect


def test_branch_rows_plot_and_errors():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = sd.EmpiricalDistribution(np.array([[-1.0], [1.0]]), schedule=OU)
    b = sd.central_branch(model, [0.5, 2.0, 1.0])
    np.testing.assert_array_equal(b.times, [2.0, 1.0, 0.5])
    rows = b.to_rows()
    assert [r["t"] for r in rows] == [2.0, 1.0, 0.5]
    assert set(rows[0]) == {"t", "margin", "n_eff", "distance_to_centre", "distance_to_nearest"}
    fig, ax = plt.subplots()
    assert b.plot(ax) is ax
    plt.close(fig)
    with pytest.raises(ValueError, match="times"):
        sd.central_branch(model, [])
    with pytest.raises(ValueError, match="t"):
        sd.central_branch(model, [0.5, -1.0])
    with pytest.raises(ValueError, match="dynamics"):
        sd.central_branch(model, [0.5], dynamics="langevin")
    with pytest.raises(ValueError, match="max_halvings"):
        sd.central_branch(model, [0.5], max_halvings=-1)


@settings(max_examples=25, deadline=None)
@given(lam=st.floats(2.2, 500.0))
def test_gaussian_instability_time_ou_closed_form(lam):
    assert sd.gaussian_instability_time(top_eigenvalue=lam) == pytest.approx(0.5 * np.log(lam - 1.0), rel=1e-9)


def test_gaussian_instability_time_matches_symmetry_breaking_of_a_gaussian():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + np.diag([4.0, 0.5, 0.2])
    sch = sd.VPSDE()
    # zero mean: with m != 0 the Gaussian's fixed point alpha (a I + H)^-1 H m runs off to infinity
    # at the crossing and the reference's margin is only good to ~1e-6 there
    g = sd.GaussianMixture.full(np.zeros((1, 3)), cov[None], schedule=sch)
    ref = sd.symmetry_breaking_time(g).time
    lam = float(np.linalg.eigvalsh(cov)[-1])
    assert sd.gaussian_instability_time(sch, top_eigenvalue=lam) == pytest.approx(ref, rel=1e-10)
    data = rng.multivariate_normal(np.zeros(3), cov, size=4000)
    t_data = sd.gaussian_instability_time(sch, data=data)
    lam_data = sd.covariance_spectrum(data).top
    assert t_data == pytest.approx(sd.gaussian_instability_time(sch, top_eigenvalue=lam_data), rel=1e-12)


def test_gaussian_instability_time_errors():
    with pytest.raises(ValueError, match="exactly one"):
        sd.gaussian_instability_time()
    with pytest.raises(ValueError, match="exactly one"):
        sd.gaussian_instability_time(top_eigenvalue=3.0, data=np.ones((4, 2)))
    with pytest.raises(ValueError, match="top_eigenvalue"):
        sd.gaussian_instability_time(top_eigenvalue=-1.0)
    with pytest.raises(ValueError, match="top_eigenvalue"):
        sd.gaussian_instability_time(top_eigenvalue=float("nan"))
    with pytest.raises(ValueError, match="does not change stability"):
        sd.gaussian_instability_time(top_eigenvalue=1.5)  # Lambda <= 2: stable centre at every t
    with pytest.raises(ValueError, match="does not change stability"):
        sd.gaussian_instability_time(top_eigenvalue=5.0, dynamics="ode")
    with pytest.raises(ValueError, match="schedule"):
        sd.gaussian_instability_time("ou", top_eigenvalue=5.0)
