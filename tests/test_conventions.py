"""Converters between time conventions and prediction targets."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import statphys_diffusion as sd
from statphys_diffusion.testing import schedules, times


@given(schedules(), schedules(), st.data())
def test_match_time_preserves_snr_and_state_distribution(src, dst, data):
    t = data.draw(times(src, log_snr_range=(-3, 5)))
    snr = src.snr(t)
    lo, hi = dst.snr(dst.default_t_start), dst.snr(dst.t_min + 1e-9)
    if not (lo < snr < hi):
        return
    t2, scale = sd.match_time(t, src, dst)
    assert abs(dst.log_snr(t2) - src.log_snr(t)) < 1e-8
    # x_dst = scale * x_src in distribution: both noise levels and signal levels match
    assert abs(scale * src.alpha(t) - dst.alpha(t2)) < 1e-10 * max(1.0, dst.alpha(t2))
    assert abs(scale * src.sigma(t) - dst.sigma(t2)) < 1e-8 * max(1.0, dst.sigma(t2))


def test_match_time_maps_data_to_data():
    t2, scale = sd.match_time(0.0, sd.OrnsteinUhlenbeck(), sd.VPSDE())
    assert t2 == 0.0 and scale == 1.0


def test_edm_sigma_round_trip_and_known_values():
    ou = sd.OrnsteinUhlenbeck()
    t = np.array([0.01, 0.5, 3.0])
    sig = sd.edm_sigma_of_time(t, ou)
    np.testing.assert_allclose(sig, np.sqrt(np.expm1(2 * t)), rtol=1e-12)  # sigma/alpha = sqrt(e^{2t} - 1)
    np.testing.assert_allclose(sd.time_of_edm_sigma(sig, ou), t, rtol=1e-12)
    ve = sd.VarianceExploding()
    np.testing.assert_allclose(sd.edm_sigma_of_time(t, ve), t, rtol=1e-14)


def test_ddpm_index_round_trip_through_ou():
    lin = sd.DiscreteSchedule.linear(1000)
    ou = sd.OrnsteinUhlenbeck()
    k = np.array([0, 10, 500, 999])
    t_ou = sd.ddpm_index_to_time(k, lin, ou)
    # OU time of alpha_bar: e^{-2t} = alpha_bar
    np.testing.assert_allclose(t_ou, -0.5 * np.log(lin.alphas_cumprod[k]), rtol=1e-10)
    np.testing.assert_array_equal(sd.time_to_ddpm_index(t_ou, ou, lin), k)


@given(
    schedules(),
    st.data(),
    st.sampled_from(sd.conventions.PREDICTION_KINDS),
    st.sampled_from(sd.conventions.PREDICTION_KINDS),
)
def test_prediction_conversions_are_consistent(sch, data, a, b):
    t = data.draw(times(sch, log_snr_range=(-3, 4)))
    rng = np.random.default_rng(data.draw(st.integers(0, 10**6)))
    x0 = rng.normal(size=(5, 3))
    eps = rng.normal(size=(5, 3))
    al, si = float(sch.alpha(t)), float(sch.sigma(t))
    x = al * x0 + si * eps
    truth = {"eps": eps, "x0": x0, "v": al * eps - si * x0, "score": -eps / si}
    out = sd.convert_prediction(truth[a], x, t, sch, source=a, target=b)
    scale = np.abs(truth[b]).max() + np.abs(x).max() / min(al, si)
    np.testing.assert_allclose(out, truth[b], atol=1e-10 * scale)


def test_prediction_bad_input():
    ou = sd.OrnsteinUhlenbeck()
    with pytest.raises(ValueError, match="source"):
        sd.convert_prediction(np.zeros(3), np.zeros(3), 0.5, ou, source="noise", target="x0")
    with pytest.raises(ValueError, match="shape"):
        sd.convert_prediction(np.zeros(3), np.zeros(4), 0.5, ou, source="eps", target="x0")
    with pytest.raises(ValueError):
        sd.time_of_edm_sigma(-1.0, ou)


@given(schedules(), st.data(), st.floats(-3, 3), st.floats(0.05, 4.0))
def test_denoiser_from_score_is_the_gaussian_posterior_mean(sch, data, mu, v):
    """For x_0 ~ N(mu, v) the posterior mean has the closed form mu + a v (x - a mu) / (a^2 v + s^2);
    the score of p_t = N(a mu, a^2 v + s^2) fed to Tweedie's formula must give it (to float64 rounding)."""
    t = data.draw(times(sch, log_snr_range=(-4, 6)))
    a, s2 = float(sch.alpha(t)), float(sch.sigma2(t))
    x = np.linspace(-5, 5, 7)[:, None]
    var_t = a * a * v + s2
    score = -(x - a * mu) / var_t
    closed = mu + a * v * (x - a * mu) / var_t
    got = sd.denoiser_from_score(x, score, t, sch)
    np.testing.assert_allclose(
        got, closed, rtol=1e-9, atol=1e-9 * (abs(mu) + np.sqrt(v)) / max(a, 1e-300) * 1e-3 + 1e-9
    )


def test_denoiser_from_score_refuses_alpha_zero():
    class _Dead(sd.OrnsteinUhlenbeck):
        def alpha(self, t):
            return 0.0 * np.asarray(t, dtype=np.float64)

    with pytest.raises(ValueError, match="alpha_t = 0"):
        sd.denoiser_from_score(np.zeros((1, 1)), np.zeros((1, 1)), 1.0, _Dead())
