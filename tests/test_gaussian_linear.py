"""Gaussian linear theory (Wang & Vastola): the closed-form probability flow against a numerical ODE
solve and against the flow's defining property (it carries p_t to p_t'), teleportation, and the
explained variance of a score by a reference (1 for itself, the Gaussian's share for non-Gaussian data)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import statphys_diffusion as sd


def _flow(seed, d=4, schedule=None):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    cov = a @ a.T / d + 0.05 * np.eye(d)
    return sd.GaussianFlow(rng.standard_normal(d), cov, schedule=schedule), rng


@pytest.mark.parametrize("schedule", [sd.OrnsteinUhlenbeck(), sd.VPSDE(), sd.VarianceExploding(sigma_max=20.0)])
def test_transport_equals_a_numerical_solve_of_the_probability_flow_ode(schedule):
    """Heun on the exact Gaussian score is the independent reference. Second order: its error against
    the closed form must fall fourfold (3x to 5x) when the steps double from 250 to 500, and be below
    1e-4 at 500 steps (measured 2e-5 to 2e-6 for these schedules)."""
    flow, rng = _flow(0, schedule=schedule)
    ends = {sd.OrnsteinUhlenbeck: (2.0, 0.05), sd.VPSDE: (0.9, 0.05), sd.VarianceExploding: (3.0, 0.1)}
    t0, t1 = ends[type(schedule)]
    x = rng.standard_normal((5, 4)) * float(np.sqrt(schedule.alpha(t0) ** 2 + schedule.sigma2(t0)))
    exact = flow.transport(x, t0, t1)
    err = [
        np.abs(sd.Heun(times=np.linspace(t0, t1, n + 1)).sample(flow.model(), x_init=x).x - exact).max()
        for n in (250, 500)
    ]
    assert err[1] < 1e-4
    assert 3.0 < err[0] / err[1] < 5.0


@given(st.integers(0, 2**31 - 1), st.floats(0.05, 3.0), st.floats(0.05, 3.0), st.floats(0.05, 3.0))
def test_transport_composes_and_inverts(seed, ta, tb, tc):
    flow, rng = _flow(seed)
    x = rng.standard_normal((3, 4))
    via = flow.transport(flow.transport(x, ta, tb), tb, tc)
    np.testing.assert_allclose(via, flow.transport(x, ta, tc), atol=1e-9)
    np.testing.assert_allclose(flow.transport(flow.transport(x, ta, tb), tb, ta), x, atol=1e-9)


def test_transport_carries_p_t_to_p_t_prime():
    """Draws of p_t = N(alpha mu, alpha^2 Sigma + sigma^2 I) mapped to t' have the moments of p_t' (Monte
    Carlo, 200,000 draws: standard errors ~ 2e-3 on unit-size moments; tolerance 2e-2)."""
    flow, rng = _flow(1)
    gm = flow.model()
    draws = gm.sample(200_000, 1.5, rng=rng).x
    y = flow.transport(draws, 1.5, 0.2)
    a, s2 = float(gm.schedule.alpha(0.2)), float(gm.schedule.sigma2(0.2))
    np.testing.assert_allclose(y.mean(0), a * flow.mean(), atol=2e-2)
    np.testing.assert_allclose(np.cov(y.T), a * a * flow.covariance() + s2 * np.eye(4), atol=2e-2)


def test_a_singular_covariance_collapses_onto_the_data_span_and_teleport_maps_noise():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((3, 6))  # 3 points in 6-D: rank 2
    flow = sd.GaussianFlow.fit(data)
    assert flow.rank == 2
    x = flow.transport(rng.standard_normal((4, 6)), 3.0, 0.0)
    # at t = 0 every point lies in the affine span of the data
    basis = np.linalg.svd(data - data.mean(0))[2][:2]
    resid = (x - data.mean(0)) - ((x - data.mean(0)) @ basis.T) @ basis
    assert np.abs(resid).max() < 1e-10
    with pytest.raises(ValueError, match="singular"):
        flow.transport(x, 0.0, 1.0)
    noise = rng.standard_normal((2, 6))
    t_start = flow.schedule.default_t_start
    np.testing.assert_array_equal(flow.teleport(noise, 1.0), flow.transport(noise, t_start, 1.0))
    with pytest.raises(ValueError, match="t_skip must be earlier"):
        flow.teleport(noise, t_start + 1.0, t_start=t_start)


def test_explained_variance_of_a_score_by_itself_and_of_two_deltas_by_their_gaussian():
    rng = np.random.default_rng(3)
    flow, _ = _flow(4)
    gm = flow.model()
    data = gm.sample(300, 0.0, rng=rng).x0
    same = sd.explained_variance(gm, gm, data, [0.1, 1.0], n=64, rng=0)
    np.testing.assert_allclose(same.value, 1.0, atol=1e-12)
    # two far deltas: the Gaussian explains the score at high noise, not at low noise
    deltas = sd.EmpiricalDistribution(np.array([[-3.0], [3.0]]))
    g = sd.GaussianFlow.of(deltas).model(ridge=1e-6)
    ev = sd.explained_variance(deltas, g, deltas.points, [0.02, 3.0], n=400, rng=1)
    assert ev.value[1] > 0.99 and ev.value[0] < 0.5
    assert np.all(ev.value_stderr >= 0) and len(ev.to_rows()) == 2


def test_bad_input():
    with pytest.raises(ValueError, match="positive semi-definite"):
        sd.GaussianFlow(np.zeros(2), [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        sd.GaussianFlow(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="covariance must have shape"):
        sd.GaussianFlow(np.zeros(2), np.eye(3))
    flow = sd.GaussianFlow(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="x must have shape"):
        flow.transport(np.zeros((1, 3)), 1.0, 0.5)
    with pytest.raises(ValueError, match="t_to"):
        flow.transport(np.zeros((1, 2)), 1.0, -0.5)
