"""Schedules: derivatives, inverse maps, limits, DDPM/diffusers reproduction."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import statphys_diffusion as sd
from statphys_diffusion.testing import schedules, times


@given(schedules(), st.data())
def test_derivatives_match_finite_differences(sch, data):
    t = data.draw(times(sch, log_snr_range=(-4, 5)))
    lo = sch.t_min
    hi = min(sch.t_max, sch.default_t_start)
    h = 1e-6 * max(1.0, hi)
    if t - h < lo or t + h > hi:
        return
    # central differences: truncation ~h^2 |f'''|, rounding ~1e-16/h; 1e-6 relative suffices
    for f, df in ((sch.alpha, sch.dalpha), (sch.sigma, sch.dsigma)):
        fd = (f(t + h) - f(t - h)) / (2 * h)
        assert abs(df(t) - fd) <= 1e-5 * (abs(fd) + abs(f(t)) / max(1.0, hi))


@given(schedules(), st.data())
def test_t_of_snr_inverts_snr(sch, data):
    t = data.draw(times(sch))
    assert abs(sch.t_of_snr(sch.snr(t)) - t) <= 1e-9 * max(1.0, t)


@given(schedules(), st.data())
def test_base_bisection_agrees_with_closed_forms(sch, data):
    t = data.draw(times(sch))
    snr = sch.snr(t)
    assert abs(sd.Schedule.t_of_snr(sch, snr) - sch.t_of_snr(snr)) <= 1e-9 * max(1.0, t)


@given(schedules())
def test_sde_coefficients_reproduce_variance(sch):
    # g^2 = d sigma^2/dt - 2 f sigma^2 is what makes Var[x_t | x_0] = sigma_t^2:
    # d/dt sigma^2 = 2 f sigma^2 + g^2 (Ito). Check that identity pointwise.
    t = np.linspace(sch.t_min, min(sch.t_max, sch.default_t_start), 7)[1:-1]
    lhs = sch.diffusion2(t) + 2 * sch.drift_coefficient(t) * sch.sigma2(t)
    h = 1e-6
    rhs = (sch.sigma2(t + h) - sch.sigma2(t - h)) / (2 * h)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-8)
    assert np.all(sch.diffusion2(t) >= 0)


def test_ou_closed_forms_with_sympy():
    t = sp.symbols("t", positive=True)
    alpha = sp.exp(-t)
    sigma2 = 1 - sp.exp(-2 * t)
    snr = sp.simplify(alpha**2 / sigma2)
    s = sp.symbols("s", positive=True)
    inv = sp.solve(sp.Eq(snr, s), t)
    sch = sd.OrnsteinUhlenbeck()
    for val in (0.01, 0.5, 3.0):
        assert abs(float(snr.subs(t, val)) - sch.snr(val)) < 1e-12 * float(snr.subs(t, val))
        ref = [float(r.subs(s, sch.snr(val))) for r in inv]
        assert min(abs(r - val) for r in ref) < 1e-12
    f = sp.diff(sp.log(alpha), t)
    g2 = sp.simplify(sp.diff(sigma2, t) - 2 * f * sigma2)
    assert sp.simplify(g2 - 2) == 0
    assert sch.diffusion2(0.7) == pytest.approx(2.0, rel=1e-14)


def test_vpsde_closed_form_with_sympy():
    t, b0, b1 = sp.symbols("t b0 b1", positive=True)
    log_alpha = -sp.Rational(1, 2) * sp.integrate(b0 + (b1 - b0) * sp.Symbol("u"), (sp.Symbol("u"), 0, t))
    sch = sd.VPSDE(0.1, 20.0)
    for val in (0.01, 0.3, 1.0):
        ref = float(sp.exp(log_alpha).subs({t: val, b0: 0.1, b1: 20.0}))
        assert sch.alpha(val) == pytest.approx(ref, rel=1e-13)


def test_limits():
    ou = sd.OrnsteinUhlenbeck()
    assert ou.alpha(0.0) == 1.0 and ou.sigma(0.0) == 0.0 and ou.snr(0.0) == math.inf
    assert ou.alpha(20.0) == pytest.approx(math.exp(-20))
    assert ou.sigma(20.0) == pytest.approx(1.0)
    lin = sd.DiscreteSchedule.linear()
    assert lin.alpha(0.0) == 1.0 and lin.sigma(0.0) == 0.0


def test_vpsde_is_continuum_limit_of_ddpm_linear():
    # DDPM linear betas (1e-4..0.02, T=1000) ~ beta(t) = 0.1 + 19.9 t with t = k/T.
    lin = sd.DiscreteSchedule.linear(1000)
    vp = sd.VPSDE(0.1, 20.0)
    k = np.array([100, 500, 999])
    log_ab = np.log(lin.alphas_cumprod[k])
    log_ab_vp = 2 * np.log(vp.alpha((k + 1) / 1000.0))
    # log(1 - b) = -b - b^2/2 - ... and the left Riemann sum of beta: both corrections
    # are below 1% of log alpha_bar for k >= 100 (0.75%, 0.24%, 0.67% here)
    np.testing.assert_allclose(log_ab, log_ab_vp, rtol=1e-2)
    assert np.any(np.abs(log_ab - log_ab_vp) > 1e-4 * np.abs(log_ab))  # they are not identical


def test_discrete_knots_exact_and_index_map():
    lin = sd.DiscreteSchedule.linear(1000)
    k = np.arange(1000)
    t = lin.index_to_time(k)
    np.testing.assert_allclose(lin.alpha(t) ** 2, lin.alphas_cumprod, rtol=1e-14)
    np.testing.assert_array_equal(lin.time_to_index(t), k)
    np.testing.assert_allclose(lin.betas, np.linspace(1e-4, 0.02, 1000), rtol=1e-10)


def test_discrete_interpolation_is_monotone():
    for sch in (sd.DiscreteSchedule.linear(50), sd.DiscreteSchedule.cosine(50)):
        t = np.linspace(0, sch.t_max, 5001)
        assert np.all(np.diff(sch.alpha(t)) < 0)
        assert np.all(np.diff(sch.sigma(t)) > 0)


def test_cosine_matches_nichol_dhariwal_definition():
    sch = sd.DiscreteSchedule.cosine(1000)
    k = np.arange(1000)
    f = np.cos(((k + 1) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    # clipping at beta = 0.999 only bites at the very last steps
    np.testing.assert_allclose(sch.alphas_cumprod[:990], f[:990], rtol=1e-9)


torch = pytest.importorskip  # alias for readability below


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("T", [1000, 37])
def test_from_diffusers_bit_exact_against_torch(kind, T):
    torch = pytest.importorskip("torch")
    b0, b1 = (0.00085, 0.012) if kind == "scaled_linear" else (1e-4, 0.02)
    if kind == "linear":
        betas = torch.linspace(b0, b1, T, dtype=torch.float32)
    elif kind == "scaled_linear":
        betas = torch.linspace(b0**0.5, b1**0.5, T, dtype=torch.float32) ** 2
    else:

        def abar(u):
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    ref = torch.cumprod(1.0 - betas, dim=0).numpy()
    sch = sd.DiscreteSchedule.from_diffusers(kind, T, b0, b1)
    assert sch.alphas_cumprod.dtype == np.float32
    np.testing.assert_array_equal(sch.alphas_cumprod, ref)


def test_from_diffusers_against_diffusers_itself():
    diffusers = pytest.importorskip("diffusers")
    for kind in ("linear", "scaled_linear", "squaredcos_cap_v2"):
        ref = diffusers.DDPMScheduler(beta_schedule=kind).alphas_cumprod.numpy()
        np.testing.assert_array_equal(sd.DiscreteSchedule.from_diffusers(kind).alphas_cumprod, ref)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: sd.OrnsteinUhlenbeck().alpha(-0.1),
        lambda: sd.VPSDE().sigma(1.5),
        lambda: sd.OrnsteinUhlenbeck().alpha(float("nan")),
        lambda: sd.VPSDE(beta_min=-1.0),
        lambda: sd.DiscreteSchedule([0.5, 0.9]),
        lambda: sd.DiscreteSchedule([0.9, 1.2]),
        lambda: sd.DiscreteSchedule.from_diffusers("sigmoidal"),
        lambda: sd.OrnsteinUhlenbeck().t_of_snr(-1.0),
        lambda: sd.DiscreteSchedule.linear(10).index_to_time(10),
        lambda: sd.VarianceExploding(sigma_max=0),
    ],
)
def test_bad_input_raises(bad):
    with pytest.raises(ValueError):
        bad()


def test_linear_scaled_to_1000_convention():
    """improved-diffusion scales the linear betas by 1000/T; diffusers does not."""
    s = sd.DiscreteSchedule.linear(100, scale_to_1000=True)
    np.testing.assert_allclose(s.betas, np.linspace(1e-3, 0.2, 100), rtol=1e-10)
    plain = sd.DiscreteSchedule.linear(100)
    np.testing.assert_allclose(plain.betas, np.linspace(1e-4, 0.02, 100), rtol=1e-10)
    # the rescaled 100-step schedule covers the same noise range as 1000 plain steps (log alpha_bar within 10%)
    full = sd.DiscreteSchedule.linear(1000)
    assert np.log(s.alphas_cumprod[-1]) == pytest.approx(np.log(full.alphas_cumprod[-1]), rel=0.1)
    with pytest.raises(ValueError, match="betas"):
        sd.DiscreteSchedule.linear(10, beta_end=0.2, scale_to_1000=True)
