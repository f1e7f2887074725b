"""The adapter on real diffusers UNets: batched Jacobian products through attention, the scheduler's
own alphas_cumprod, prediction types, clipping and variance types, and a DDPM loop step for step
against diffusers' DDPMScheduler."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import diffusers.schedulers.scheduling_ddpm as ddpm_module  # noqa: E402

from statphys_diffusion import nets  # noqa: E402
from statphys_diffusion.samplers import DDPMAncestral  # noqa: E402


def _attention_unet(dtype=torch.float32):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
    ).eval()
    return unet.to(dtype)


@pytest.fixture(scope="module")
def unets():
    return _attention_unet(torch.float32), _attention_unet(torch.float64)


@pytest.mark.parametrize("m", [1, 3])
def test_batched_jvp_through_attention_matches_central_differences(unets, m):
    """Attention in the down, up and mid blocks. The float64 twin's central differences (h = 1e-5:
    truncation ~ h^2 |D'''| and rounding ~ 1e-16 / h, both below 1e-9 relative) are the reference;
    float32 products must agree to 1e-4 relative (float32 rounding through ~20 layers), float64 to 1e-7."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    m32, m64 = (nets.from_diffusers(u, sched) for u in unets)
    rng = np.random.default_rng(m)
    x, v = rng.standard_normal((m, m32.dim)), rng.standard_normal((m, m32.dim))
    t, h = 100.0, 1e-5
    fd = (m64.denoise(x + h * v, t) - m64.denoise(x - h * v, t)) / (2 * h)
    scale = np.abs(fd).max()
    assert np.abs(m32.jvp(x, t, v) - fd).max() / scale < 1e-4
    assert np.abs(m64.jvp(x, t, v) - fd).max() / scale < 1e-7
    # J^T is the adjoint of J: <u, J v> = <J^T u, v> row by row
    u = rng.standard_normal(x.shape)
    lhs = np.einsum("ij,ij->i", u, m64.jvp(x, t, v))
    rhs = np.einsum("ij,ij->i", m64.vjp(x, t, u), v)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


def test_forward_mode_fails_on_attention_and_reverse_mode_is_the_fallback(unets):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    rng = np.random.default_rng(0)
    fwd = nets.from_diffusers(unets[1], sched, jvp_mode="forward")
    x, v = rng.standard_normal((2, fwd.dim)), rng.standard_normal((2, fwd.dim))
    with pytest.raises(RuntimeError):
        fwd.jvp(x, 50.0, v)
    rev = nets.from_diffusers(unets[1], sched, jvp_mode="reverse")
    auto = nets.from_diffusers(unets[1], sched)
    np.testing.assert_allclose(auto.jvp(x, 50.0, v), rev.jvp(x, 50.0, v), rtol=1e-12, atol=1e-12)
    # Lanczos and hvp run on top of it
    vals = auto.jacobian_spectrum(x[0], 50.0, k=3)
    dense = auto.dense_jacobian(x[0], 50.0)
    top = np.sort(np.linalg.eigvalsh(0.5 * (dense + dense.T)))[::-1][:3]
    np.testing.assert_allclose(vals, top, rtol=1e-6, atol=1e-8)
    assert auto.hvp(x, 50.0, v).shape == x.shape


@pytest.mark.parametrize(
    "config",
    [
        {"trained_betas": np.linspace(1e-3, 0.3, 100) ** 1.5},
        {"rescale_betas_zero_snr": True},
        {"rescale_betas_zero_snr": True, "beta_schedule": "squaredcos_cap_v2"},
        {"beta_schedule": "scaled_linear", "beta_start": 8.5e-4, "beta_end": 0.012},
    ],
)
def test_schedule_is_the_schedulers_own_alphas_cumprod(config):
    """1e-7: the scheduler's float32 values are taken as they are; only a terminal alpha_bar = 0
    (zero-SNR rescaling) becomes 2**-24 = 6e-8."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=100, **config)
    ours = nets.diffusers_schedule(sched).alphas_cumprod.astype(np.float64)
    theirs = sched.alphas_cumprod.double().numpy()
    assert np.abs(ours - theirs).max() <= 1e-7


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"prediction_type": "v_prediction", "variance_type": "fixed_large"},
        {"prediction_type": "sample", "rescale_betas_zero_snr": True, "beta_schedule": "squaredcos_cap_v2"},
        {"prediction_type": "epsilon", "clip_sample": False, "variance_type": "fixed_small_log"},
    ],
)
def test_ddpm_sampling_reproduces_the_diffusers_loop(unets, config, monkeypatch):
    """The package's DDPMAncestral over the wrapped UNet against diffusers' own DDPMScheduler.step
    loop, with the same noise (diffusers' draws replaced by the package's numpy draws, in order):
    equal trajectories up to float32 rounding (diffusers works in float32, the package in float64
    around the float32 network): 1e-4 absolute on states of size ~1 over 20 steps."""
    unet = unets[0]
    sched = diffusers.DDPMScheduler(num_train_timesteps=100, **config)
    model = nets.from_diffusers(unet, sched)
    sampler = DDPMAncestral.from_diffusers(sched, 20)
    assert sched.timesteps.numel() == 100  # the caller's scheduler is left as it was
    res = sampler.sample(model, n=2, rng=np.random.default_rng(0), return_trajectory=True)

    rng = np.random.default_rng(0)
    draws = iter([rng.standard_normal((2, model.dim)) for _ in range(sampler.n_steps + 1)])
    monkeypatch.setattr(
        ddpm_module,
        "randn_tensor",
        lambda shape, **kw: torch.as_tensor(next(draws), dtype=torch.float32).reshape(shape),
    )
    ref = diffusers.DDPMScheduler.from_config(sched.config)
    ref.set_timesteps(20)
    x = torch.as_tensor(next(draws), dtype=torch.float32).reshape(2, 3, 8, 8)
    traj = [x.reshape(2, -1).numpy().copy()]
    with torch.no_grad():
        for t in ref.timesteps:
            x = ref.step(unet(x, t).sample, t, x).prev_sample
            traj.append(x.reshape(2, -1).numpy().copy())
    np.testing.assert_allclose(res.trajectory, np.array(traj), atol=1e-4, rtol=0)
    if config.get("clip_sample", True) and config.get("prediction_type", "epsilon") != "sample":
        assert model.clip_denoised == 1.0


def test_clip_override_and_refusals(unets):
    sched = diffusers.DDPMScheduler(num_train_timesteps=100)
    assert nets.from_diffusers(unets[0], sched).clip_denoised == 1.0
    assert nets.from_diffusers(unets[0], sched, clip_denoised=False).clip_denoised is None
    assert nets.from_diffusers(unets[0], sched, clip_denoised=2.5).clip_denoised == 2.5
    x = 5 * np.random.default_rng(0).standard_normal((2, 192))
    d = nets.from_diffusers(unets[0], sched, clip_denoised=0.5).denoise(x, 3.0, clip=True)
    assert np.abs(d).max() <= 0.5
    for bad, match in (
        ({"variance_type": "learned_range"}, "variance_type"),
        ({"variance_type": "fixed_large_log"}, "variance_type"),
        ({"thresholding": True}, "thresholding"),
    ):
        s = diffusers.DDPMScheduler(num_train_timesteps=100, **bad)
        with pytest.raises(ValueError, match=match):
            nets.from_diffusers(unets[0], s)
    s = diffusers.DDPMScheduler(num_train_timesteps=100)
    s.register_to_config(prediction_type="flow")
    with pytest.raises(ValueError, match="prediction_type"):
        nets.from_diffusers(unets[0], s)
    with pytest.raises(ValueError, match="variance_type"):
        DDPMAncestral.from_diffusers(diffusers.DDPMScheduler(num_train_timesteps=10, variance_type="learned"))


def test_a_network_whose_output_has_another_shape_is_refused():
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=6,  # a learned-variance UNet: mean and variance channels
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    ).eval()
    model = nets.from_diffusers(unet, diffusers.DDPMScheduler(num_train_timesteps=100))
    with pytest.raises(ValueError, match="net returned shape"):
        model.eps(np.zeros((1, 192)), 10.0)


def test_diffusers_unet_adapter_on_a_random_model():
    unet = _attention_unet()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    model = nets.from_diffusers(unet, sched)
    assert model.dim == 192
    np.testing.assert_array_equal(model.schedule.alphas_cumprod, sched.alphas_cumprod.numpy())
    x = np.random.default_rng(0).standard_normal((3, 192))
    k = 417  # DDPM index; the schedule's time is k + 1
    with torch.no_grad():
        eps = unet(torch.as_tensor(x, dtype=torch.float32).reshape(3, 3, 8, 8), torch.full((3,), k)).sample
    t = k + 1.0
    np.testing.assert_allclose(
        model.score(x, t), -eps.reshape(3, -1).double().numpy() / float(model.schedule.sigma(t)), rtol=1e-6
    )
    # the analysis tools take it: one DDPM step and a Jacobian-vector product
    out = DDPMAncestral(times=[t, t - 1.0]).sample(model, x_init=x, rng=np.random.default_rng(0))
    assert out.x.shape == (3, 192) and np.all(np.isfinite(out.x))
    assert np.all(np.isfinite(model.jvp(x[:1], t, np.ones((1, 192)))))
