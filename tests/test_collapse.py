"""Collapse time of the empirical model: sympy closed form, and prediction against measurement."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 10**6), d=st.integers(1, 3000), lam=st.floats(0.01, 100.0))
def test_isotropic_collapse_snr_matches_the_sympy_solution(n, d, lam):
    snr, nn, dd, ll = sp.symbols("snr N d lambda", positive=True)
    sol = sp.solve(sp.Eq(sp.log(nn), dd / 2 * sp.log(1 + snr * ll)), snr)
    assert len(sol) == 1
    expected = float(sol[0].subs({nn: n, dd: d, ll: lam}))
    assert sd.collapse_snr(n, np.full(d, lam)) == pytest.approx(expected, rel=1e-9)
    # OU: alpha^2 / sigma^2 = 1 / (e^{2t} - 1), so t_C = 1/2 log(1 + 1/snr_C)
    assert sd.collapse_time(n, np.full(d, lam)) == pytest.approx(0.5 * np.log1p(1 / expected), rel=1e-9)


def test_two_level_spectrum_against_sympy_nsolve():
    snr = sp.symbols("snr", positive=True)
    n, lam = 5000, np.r_[np.full(10, 4.0), np.full(90, 0.25), np.zeros(50)]
    eq = 5 * sp.log(1 + 4 * snr) + 45 * sp.log(1 + snr / 4) - sp.log(n)
    ref = float(sp.nsolve(eq, snr, 0.1))
    assert sd.collapse_snr(n, lam) == pytest.approx(ref, rel=1e-10)
    vp = sd.VPSDE()
    t = sd.collapse_time(n, lam, vp)
    assert float(vp.snr(t)) == pytest.approx(ref, rel=1e-8)
    # more data or fewer dimensions: later collapse in reverse time (smaller t)
    assert sd.collapse_time(10 * n, lam) < sd.collapse_time(n, lam)


@pytest.mark.parametrize("n_points", [100, 1000, 5000])
def test_predicted_collapse_matches_measurement_for_isotropic_gaussian_data(n_points):
    # d = 200: the annealed prediction (origin weight 1/2 at t_C) against the exact empirical
    # posterior of N standard Gaussian points noised from training points. Measured within 5% of t_C
    # (measured 2-4% later in these runs: finite-d fluctuations of the log-weights, O(1/sqrt(d)))
    rng = np.random.default_rng(n_points)
    d = 200
    emp = sd.EmpiricalDistribution(rng.standard_normal((n_points, d)))
    t_c = sd.collapse_time(n_points, np.ones(d))
    curve = sd.posterior_collapse(emp, np.geomspace(t_c / 2, 2 * t_c, 30), n=200, rng=rng)
    assert curve.source == "training"
    assert abs(curve.measured_collapse_time() / t_c - 1) < 0.05
    # well before t_C (in reverse time) the posterior is spread, well after it sits on one point
    assert curve.origin_weight[0] > 0.95 and curve.origin_weight[-1] < 0.05
    assert curve.participation[0] < 1.1 and curve.participation[-1] > 10
    fresh = sd.posterior_collapse(emp, curve.times, queries=rng.standard_normal((100, d)), rng=rng)
    assert fresh.source == "fresh" and np.all(np.isnan(fresh.origin_weight))
    # fresh data have no point of origin to fall back on: they condense much later in reverse time
    # (or not at all within the grid, reported as NaN)
    t_fresh = fresh.measured_collapse_time()
    assert np.isnan(t_fresh) or t_fresh < 0.8 * curve.measured_collapse_time()


def test_bad_input():
    with pytest.raises(ValueError, match="n_points"):
        sd.collapse_snr(1, [1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        sd.collapse_snr(10, [1.0, -1.0])
    with pytest.raises(ValueError, match="positive value"):
        sd.collapse_snr(10, [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        sd.collapse_snr(10, [np.nan])
    emp = sd.EmpiricalDistribution(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        sd.posterior_collapse(emp, [0.5])
    emp = sd.EmpiricalDistribution(np.eye(3))
    with pytest.raises(ValueError, match="queries"):
        sd.posterior_collapse(emp, [0.5], queries=np.zeros((2, 4)))
    curve = sd.posterior_collapse(emp, [0.5, 1.0], n=5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="level"):
        curve.measured_collapse_time(1.5)
