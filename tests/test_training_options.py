"""Training options: what the network predicts (eps, x0, v, EDM), the noise-level distribution,
validated TrainConfig fields, devices, weights-only checkpoints and stable cache keys."""

from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

torch = pytest.importorskip("torch")

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import nets  # noqa: E402
from statphys_diffusion.nets import parametrization as par  # noqa: E402
from statphys_diffusion.nets.train import _draw_times  # noqa: E402

alphas = st.floats(0.01, 1.0)
sigmas = st.floats(0.01, 3.0)


@given(alphas, sigmas, st.sampled_from(par.PREDICTIONS), st.integers(0, 10**6))
def test_the_exact_target_gives_the_exact_eps(a, s, prediction, seed):
    """A network that outputs its training target exactly predicts eps exactly (round trip of the
    conversions; float64 rounding, relative 1e-9)."""
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    a_t, s_t = torch.tensor(a, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    xt = a_t * x0 + s_t * eps
    target = par.training_target(x0, eps, a_t, s_t, prediction)
    got = par.output_to_eps(target, xt, a_t, s_t, prediction)
    torch.testing.assert_close(got, eps, rtol=1e-9, atol=1e-9 * (1 + float(eps.abs().max())))


@given(alphas, sigmas, st.sampled_from(par.PREDICTIONS), st.integers(0, 10**6))
def test_each_objective_is_a_weighted_eps_objective(a, s, prediction, seed):
    """|F - target|^2 = w |eps_hat - eps|^2 with the weights of the module docstring: 1, 1/snr,
    (a^2 + s^2)^2 / a^2 and 1 + snr_d / snr (relative 1e-9)."""
    g = torch.Generator().manual_seed(seed)
    x0, eps, out = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    a_t, s_t = torch.tensor(a, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    xt = a_t * x0 + s_t * eps
    lhs = ((out - par.training_target(x0, eps, a_t, s_t, prediction)) ** 2).sum()
    err = ((par.output_to_eps(out, xt, a_t, s_t, prediction) - eps) ** 2).sum()
    snr = a * a / (s * s)
    w = {"eps": 1.0, "x0": 1 / snr, "v": (a * a + s * s) ** 2 / (a * a), "edm": 1 + (1 / 0.25) / snr}[prediction]
    assert float(lhs) == pytest.approx(w * float(err), rel=1e-9)


def test_noise_distributions_follow_their_laws():
    """20,000 draws. lognormal: log(sigma/alpha) ~ N(-1.2, 1.2^2) where the OU range [1e-3, 10]
    does not clip it (median within 0.05, s.e. ~0.01); logsnr: uniform in log-SNR over the
    DDPM range (KS p > 1e-3); uniform: the DDPM indices."""
    gen = torch.Generator().manual_seed(0)
    ou = sd.OrnsteinUhlenbeck()
    tau, a, s = _draw_times(ou, 20000, gen, 1e-3, "lognormal", -1.2, 1.2)
    z = np.log(s.double().numpy() / a.double().numpy())
    assert abs(np.median(z) + 1.2) < 0.05
    q25, q75 = np.percentile(z, [25, 75])
    assert abs((q75 - q25) - 1.2 * 1.349) < 0.06
    lin = sd.DiscreteSchedule.linear()
    tau, a, s = _draw_times(lin, 20000, gen, 1e-3, "logsnr")
    t = tau.double().numpy() + 1.0
    lsnr = np.asarray(lin.log_snr(t))
    lo, hi = float(lin.log_snr(lin.t_max)), float(lin.log_snr(1.0))
    assert stats.kstest((lsnr - lo) / (hi - lo), "uniform").pvalue > 1e-3
    tau, _, _ = _draw_times(lin, 5000, gen, 1e-3, "uniform")
    assert np.all(tau.numpy() == np.round(tau.numpy())) and tau.min() >= 0 and tau.max() <= 999


def test_lognormal_draws_beyond_the_schedule_are_clipped_to_its_ends():
    """A log-normal draw of sigma/alpha beyond what the schedule reaches (a 5-sigma tail: it once stopped a
    run at step 13,3xx) lands on the end of the training range instead of raising. Here every draw is out:
    P_mean = +8 asks for sigma/alpha ~ e^8 (SNR ~ 1e-7, below the DDPM linear minimum 4e-5) and P_mean = -8
    for SNR ~ 1e7 (above step 1's 1e4)."""
    gen = torch.Generator().manual_seed(0)
    lin = sd.DiscreteSchedule.linear()
    tau, _, _ = _draw_times(lin, 200, gen, 1e-3, "lognormal", 8.0, 0.1)
    np.testing.assert_allclose(tau.numpy(), 999.0, atol=1e-3)  # t = 1000, the largest training time
    tau, _, _ = _draw_times(lin, 200, gen, 1e-3, "lognormal", -8.0, 0.1)
    np.testing.assert_allclose(tau.numpy(), 0.0, atol=1e-3)  # t = 1, the smallest


@pytest.mark.parametrize("prediction", par.PREDICTIONS)
@pytest.mark.parametrize("noise", nets.NOISE_DISTRIBUTIONS)
def test_every_option_trains_and_the_adapter_reads_it_back(prediction, noise, tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((64, 2)).astype(np.float32) * 0.5
    net = nets.MLPDenoiser(2, hidden=16, depth=1, time_scale=1e-3)
    cfg = nets.TrainConfig(steps=40, batch_size=16, prediction=prediction, noise=noise, checkpoint_every=20)
    res = nets.train(net, data, sd.DiscreteSchedule.linear(), cfg, checkpoint=tmp_path / "c.pt", progress=False)
    assert np.all(np.isfinite(res.losses))
    # the checkpoint holds tensors and plain containers only
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["config"]["prediction"] == prediction and state["step"] == 40
    model = nets.TorchScoreModel(res.ema, sd.DiscreteSchedule.linear(), prediction=prediction, device="cpu")
    x = rng.standard_normal((3, 2))
    a, s = float(model.schedule.alpha(300.0)), float(model.schedule.sigma(300.0))
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)
        out = res.ema(par.network_input(xt, torch.tensor(a), torch.tensor(s), prediction), torch.full((3,), 299.0))
        eps = par.output_to_eps(out, xt, torch.tensor(a), torch.tensor(s), prediction).double().numpy()
    np.testing.assert_allclose(model.eps(x, 300.0), eps, rtol=1e-5, atol=1e-6)


def test_training_on_an_explicit_device_moves_the_network():
    torch.manual_seed(0)
    net = nets.MLPDenoiser(2, hidden=8, depth=1)
    res = nets.train(net, np.zeros((8, 2)), sd.OrnsteinUhlenbeck(), nets.TrainConfig(steps=3, batch_size=4),
                     progress=False, device="cpu")  # fmt: skip
    assert next(res.net.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    "field, value",
    [
        ("checkpoint_every", 0),
        ("steps", -1),
        ("steps", float("nan")),
        ("batch_size", None),
        ("lr", 0.0),
        ("lr", float("inf")),
        ("ema_decay", 1.5),
        ("ema_decay", 1.0),
        ("grad_clip", float("nan")),
        ("grad_clip", -1.0),
        ("label_dropout", 2.0),
        ("t_eps", -1.0),
        ("seed", -3),
        ("seed", 1.5),
        ("prediction", "score"),
        ("noise", "cosine"),
        ("p_std", 0.0),
        ("sigma_data", -0.5),
    ],
)
def test_train_config_refuses_bad_fields_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        nets.TrainConfig(**{field: value})


def test_cache_keys_of_runs_made_before_the_new_fields_are_unchanged():
    """A run keyed before the prediction/noise fields existed keeps its key (its cached directory)."""
    from statphys_diffusion.nets.run import run_key

    old_fields = ("steps", "batch_size", "lr", "ema_decay", "grad_clip", "label_dropout", "t_eps", "seed",
                  "checkpoint_every")  # fmt: skip
    tc = nets.TrainConfig(steps=15000, batch_size=64, lr=5e-4)
    key = run_key(size=16, config="small", conditional=True, train_config=tc)
    assert key["train"] == {k: v for k, v in asdict(tc).items() if k in old_fields}
    new = run_key(size=16, config="small", conditional=True, train_config=nets.TrainConfig(prediction="x0"))
    assert new["train"]["prediction"] == "x0"
    assert sd.config_hash(new) != sd.config_hash(key)
    assert nets.TrainConfig.from_dict(key["train"]) == tc
