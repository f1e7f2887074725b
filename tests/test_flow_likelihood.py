"""The probability-flow log-likelihood against the exact log-densities of Gaussian mixtures.

In one dimension a Rademacher probe gives the trace exactly (eps^2 = 1), so what is left is Heun's
O(h^2) error on the flow and the trapezoid's on the divergence: measured 0.0016 at 200 steps on the
test mixture, so 0.01 is the bound at 200 steps and it must shrink about 4x per doubling. In d > 1
Hutchinson's estimate adds noise that falls as 1 / sqrt(probes)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


@settings(max_examples=8, deadline=None)
@given(
    st.floats(-2.0, 0.0),
    st.floats(0.5, 2.0),
    st.floats(0.05, 0.5),
    st.floats(0.2, 0.8),
    st.floats(0.05, 2.0),
)
def test_one_dimension_matches_the_exact_log_density(m1, m2, var, w, t):
    gm = sd.GaussianMixture.isotropic([[m1], [m2]], var, [w, 1 - w])
    x = np.array([[m1], [0.5 * (m1 + m2)], [m2 + 0.5]]) * float(gm.schedule.alpha(t))
    est = sd.flow_log_likelihood(gm, x, t, n_steps=200, n_probes=1, rng=0)
    np.testing.assert_allclose(est, gm.log_prob(x, t), atol=0.01)


def test_heun_converges_at_second_order():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.5]], 0.1, [0.3, 0.7])
    x = np.array([[0.2], [-1.3], [2.0]])
    errs = [np.abs(sd.flow_log_likelihood(gm, x, 0.2, n_steps=n, rng=0) - gm.log_prob(x, 0.2)).max() for n in (50, 100)]
    assert errs[1] < errs[0] / 3  # O(h^2): 4x per halving, 3x allows for the prior's tiny error


def test_higher_dimensions_conditionals_and_the_ddpm_schedule():
    gm = sd.GaussianMixture.isotropic([[-1.0, 0.0, 0.5], [1.0, 0.5, -0.5]], 0.2, labels=[0, 1])
    x = np.array([[0.3, -0.2, 0.1], [-0.5, 0.4, 0.0]])
    # Hutchinson in d = 3 with 512 probes: the trace's error is O(|H|_F / sqrt(512)) per step, a few 0.01 in all
    est = sd.flow_log_likelihood(gm, x, 0.3, n_steps=100, n_probes=512, rng=1)
    np.testing.assert_allclose(est, gm.log_prob(x, 0.3), atol=0.06)
    cond = sd.flow_log_likelihood(gm, x, 0.3, y=1, n_steps=100, n_probes=512, rng=1)
    np.testing.assert_allclose(cond, gm.conditional(1).log_prob(x, 0.3), atol=0.06)
    ddpm = gm.with_schedule(sd.DiscreteSchedule.linear(1000))
    est = sd.flow_log_likelihood(ddpm, x, 100.0, n_steps=100, n_probes=512, rng=2)
    np.testing.assert_allclose(est, ddpm.log_prob(x, 100.0), atol=0.06)


def test_bad_input_is_refused():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1)
    x = np.zeros((2, 1))
    with pytest.raises(ValueError, match="t_end"):
        sd.flow_log_likelihood(gm, x, 0.5, t_end=0.4)
    with pytest.raises(ValueError, match="n_probes"):
        sd.flow_log_likelihood(gm, x, 0.5, n_probes=0)
    with pytest.raises((TypeError, ValueError), match="hvp"):
        sd.flow_log_likelihood(sd.LocalEmpirical(np.zeros((3, 1, 2, 2)), patch_size=1), np.zeros((1, 4)), 0.5)
