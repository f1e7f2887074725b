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
    with pytest.raises(ValueError, match="products"):
        sd.flow_log_likelihood(gm, x, 0.5, products="jvp")
    with pytest.raises(ValueError, match="products='vjp'"):  # an exact mixture has hvp but no vjp
        sd.flow_log_likelihood(gm, x, 0.5, products="vjp")
    with pytest.raises((TypeError, ValueError), match="hvp"):
        sd.flow_log_likelihood(sd.LocalEmpirical(np.zeros((3, 1, 2, 2)), patch_size=1), np.zeros((1, 4)), 0.5)


def _wrapped_linear(mean, cov, skew=None):
    """A float64 torch network whose eps is the exact Gaussian N(mean, cov)'s under the OU schedule, plus
    ``skew @ x`` (a non-symmetric Jacobian part) when given."""
    torch = pytest.importorskip("torch")
    from statphys_diffusion.nets import TorchScoreModel

    class GaussEps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("m", torch.tensor(mean))
            self.register_buffer("c", torch.tensor(cov))
            self.register_buffer("k", torch.tensor(np.zeros_like(cov) if skew is None else skew))
            self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, x, tau):
            a, s2 = float(torch.exp(-tau[0])), float(-torch.expm1(-2 * tau[0]))
            cov_t = a * a * self.c + s2 * torch.eye(self.c.shape[0], dtype=x.dtype)
            d = self.m + (a * self.c @ torch.linalg.solve(cov_t, (x - a * self.m).T)).T
            return (x - a * d) / s2**0.5 + x @ self.k.T

    return TorchScoreModel(GaussEps(), sd.OrnsteinUhlenbeck(), time_input="time")


def test_a_wrapped_network_takes_the_vjp_path_and_matches_the_exact_log_density():
    """A network (a model with vjp) gets its trace from one vjp per probe: on a network that is an exact
    Gaussian, the estimate matches the closed form within Hutchinson's noise (the tolerance of the exact
    models' d = 3 test above, same probe count)."""
    mean, cov = np.array([0.3, -0.2, 0.1]), np.array([[0.5, 0.1, 0.0], [0.1, 0.3, 0.05], [0.0, 0.05, 0.2]])
    net = _wrapped_linear(mean, cov)
    x = np.array([[0.3, -0.2, 0.1], [-0.5, 0.4, 0.0]])
    est = sd.flow_log_likelihood(net, x, 0.3, n_steps=100, n_probes=512, rng=1)
    exact = sd.GaussianMixture([mean], [cov], schedule=sd.OrnsteinUhlenbeck()).log_prob(x, 0.3)
    np.testing.assert_allclose(est, exact, atol=0.06)


def test_the_vjp_quadratic_form_equals_the_symmetrised_hessians_on_a_non_symmetric_jacobian():
    """eps^T J eps = eps^T sym(J) eps for every probe, so with the same probes the two paths agree to float64
    rounding (1e-9 on log-densities of order 1) even where J is far from symmetric."""
    rng = np.random.default_rng(0)
    skew = 0.4 * rng.standard_normal((4, 4))
    net = _wrapped_linear(np.zeros(4), np.diag([0.5, 0.3, 0.2, 0.4]), skew)
    x = rng.standard_normal((3, 4)) * 0.5
    a = sd.flow_log_likelihood(net, x, 0.3, n_steps=20, n_probes=3, rng=5)
    b = sd.flow_log_likelihood(net, x, 0.3, n_steps=20, n_probes=3, products="hvp", rng=5)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(a))


def test_product_batches_do_not_change_the_products():
    net = _wrapped_linear(np.zeros(4), np.diag([0.5, 0.3, 0.2, 0.4]), 0.3 * np.eye(4)[::-1])
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    ref = net.vjp(x, 0.4, v), net.jvp(x, 0.4, v)
    assert net.product_batch_size == 256  # the CPU default: min(batch_size, 256)
    net.product_batch_size = 2
    np.testing.assert_allclose(net.vjp(x, 0.4, v), ref[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.jvp(x, 0.4, v), ref[1], rtol=1e-12, atol=1e-14)
    from statphys_diffusion.nets import TorchScoreModel

    with pytest.raises(ValueError, match="product_batch_size"):
        TorchScoreModel(net.net, net.schedule, time_input="time", product_batch_size=0)
