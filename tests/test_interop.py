"""A new user's path with diffusers (issue 32): zero-terminal-SNR schedulers at 1,000 steps, the clip
rule (samplers clip, analysis does not), class-conditional UNets, a pipeline saved on disk and loaded
in one call, and the image layout of the data handed to the analysis tools."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import nets  # noqa: E402
from statphys_diffusion.samplers import DDIM  # noqa: E402

SIZE = 16


def _unet(num_class_embeds=None, dtype=torch.float32, seed=0):
    """A random 3 x 16 x 16 UNet with attention (the shape of the issue's acceptance test)."""
    torch.manual_seed(seed)
    return (
        diffusers.UNet2DModel(
            sample_size=SIZE,
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=4,
            attention_head_dim=4,
            num_class_embeds=num_class_embeds,
        )
        .eval()
        .to(dtype)
    )


# -- bug 1: zero terminal SNR ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ["DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler"])
@pytest.mark.parametrize("steps", [100, 1000])
def test_zero_terminal_snr_schedulers_at_any_step_count(cls, steps):
    """The terminal alpha_bar = 0 (or Euler's 2^-24, above its predecessor at 1,000 steps) becomes
    2^-24 where that is below the value before it, else the geometric continuation a[-2]^2 / a[-3];
    every other value is the scheduler's own."""
    sched = getattr(diffusers, cls)(num_train_timesteps=steps, rescale_betas_zero_snr=True)
    ac = sched.alphas_cumprod.numpy().astype(np.float32)
    sch = nets.diffusers_schedule(sched)
    got = np.asarray(sch.alphas_cumprod)
    np.testing.assert_array_equal(got[:-1], ac[:-1])
    assert np.all(np.diff(got) < 0)
    expected = 2.0**-24 if 2.0**-24 < ac[-2] else float(ac[-2]) ** 2 / float(ac[-3])
    assert got[-1] == pytest.approx(expected, rel=1e-6)
    if steps == 1000:
        assert got[-1] < 2.0**-24  # the case the earlier rule got wrong
    # a sampler runs from the top of the schedule without NaN
    model = nets.from_diffusers(_unet(), sched)
    x = np.random.default_rng(0).standard_normal((2, model.dim))
    out = DDIM(3).sample(model, x_init=x, t_start=sch.t_max)
    assert np.all(np.isfinite(out.x))


# -- bug 2: the clip rule ----------------------------------------------------------------------------


def test_jacobian_matches_finite_differences_of_denoise_with_the_schedulers_clip():
    """With diffusers' default clip_sample=True the analysis reads the unclipped network: J v equals
    central differences of denoise (float64 twin: h = 1e-5 gives truncation and rounding below 1e-8
    relative; limit 1e-6). Before the rule, denoise clipped and J v disagreed by 88%."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    assert sched.config.clip_sample
    model = nets.from_diffusers(_unet(dtype=torch.float64), sched)
    assert model.clip_denoised == 1.0
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal((1, model.dim)), rng.standard_normal((1, model.dim))
    t, h = 800.0, 1e-5
    fd = (model.denoise(x + h * v, t) - model.denoise(x - h * v, t)) / (2 * h)
    assert np.abs(model.jvp(x, t, v) - fd).max() / np.abs(fd).max() < 1e-6
    # the clipped prediction is there when asked for, and it differs (the random net's x0 is out of range)
    d, dc = model.denoise(x, t), model.denoise(x, t, clip=True)
    assert np.abs(d).max() > 1 and np.abs(dc).max() <= 1 and not np.allclose(d, dc)


def test_samplers_honour_the_clip_and_analysis_does_not():
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    model = nets.from_diffusers(_unet(), sched)
    x = np.random.default_rng(2).standard_normal((2, model.dim))
    # one DDIM step from t to 0 returns the denoiser: clipped in the sampler
    out = DDIM(times=[500.0, 0.0]).sample(model, x_init=x)
    np.testing.assert_allclose(out.x, model.denoise(x, 500.0, clip=True), rtol=1e-6, atol=1e-6)
    assert np.abs(out.x).max() <= 1.0 and np.abs(model.denoise(x, 500.0)).max() > 1.0


def test_a_random_unet_is_not_converged_on_the_regime_map():
    """An untrained UNet behind a clipping scheduler must not pass for a denoiser: before the rule the
    clip pulled its x0 into range and the map said "generalising" at t = 300."""
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    model = nets.from_diffusers(_unet(), sched)
    rng = np.random.default_rng(3)
    data = np.clip(0.5 * rng.standard_normal((40, model.dim)), -1, 1)
    rm = sd.regime_map(model, data[:20], data[20:], [100.0, 300.0], n_points=16, rng=4)
    assert list(rm.regime) == ["not converged", "not converged"]


# -- bug 3: class-conditional UNets --------------------------------------------------------------------


def test_class_conditional_unet_with_and_without_a_null_class():
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    unet = _unet(num_class_embeds=4)
    x = np.random.default_rng(5).standard_normal((3, 3 * SIZE * SIZE))
    xt = torch.as_tensor(x, dtype=torch.float32).reshape(3, 3, SIZE, SIZE)

    def eps(labels, k=199):
        with torch.no_grad():
            out = unet(xt, torch.full((3,), k), class_labels=torch.as_tensor(labels)).sample
        return out.reshape(3, -1).double().numpy()

    # without a null class: four classes, a named refusal of the unconditional call
    m4 = nets.from_diffusers(unet, sched)
    np.testing.assert_array_equal(m4.classes, [0, 1, 2, 3])
    np.testing.assert_allclose(m4.eps(x, 200.0, y=2), eps([2, 2, 2]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m4.eps(x, 200.0, y=[0, 3, 1]), eps([0, 3, 1]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="null class"):
        m4.denoise(x, 200.0)
    # null label 0 (classifier-free guidance): classes are named, and map onto embeddings 1..3
    m3 = nets.from_diffusers(unet, sched, null_class=0, classes=["cat", "dog", "ship"])
    np.testing.assert_array_equal(m3.classes, ["cat", "dog", "ship"])
    np.testing.assert_allclose(m3.eps(x, 200.0), eps([0, 0, 0]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m3.eps(x, 200.0, y=["ship", "cat", "dog"]), eps([3, 1, 2]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="classes must list 3"):
        nets.from_diffusers(unet, sched, null_class=0, classes=["a", "b"])
    with pytest.raises(ValueError, match="null_class must be"):
        nets.from_diffusers(unet, sched, null_class=4)
    with pytest.raises(ValueError, match="class-conditional UNet"):
        nets.from_diffusers(_unet(), sched, null_class=0)


# -- bug 4 and the acceptance test: a pipeline saved on disk, loaded in one call -----------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000)
    diffusers.DDPMPipeline(unet=_unet(), scheduler=sched).save_pretrained(root / "uncond")
    # class-conditional, trained for classifier-free guidance: embedding 3 is the null label
    diffusers.DDPMPipeline(unet=_unet(num_class_embeds=4, seed=1), scheduler=sched).save_pretrained(root / "cond")
    return root


def test_one_call_loaders_read_a_saved_pipeline(saved):
    unet = _unet()
    x = np.random.default_rng(6).standard_normal((2, 3 * SIZE * SIZE))
    with torch.no_grad():
        ref = unet(torch.as_tensor(x, dtype=torch.float32).reshape(2, 3, SIZE, SIZE), torch.full((2,), 99)).sample
    ref = ref.reshape(2, -1).double().numpy()
    for model in (
        nets.load_pipeline(saved / "uncond"),
        nets.load_pipeline(str(saved / "uncond"), dtype=torch.float64),
        nets.from_diffusers(saved / "uncond"),
        nets.load_network(saved / "uncond")[0],
        nets.from_diffusers(diffusers.DDPMPipeline.from_pretrained(saved / "uncond", local_files_only=True)),
    ):
        assert model.dim == 3 * SIZE * SIZE and model.clip_denoised == 1.0
        np.testing.assert_allclose(model.eps(x, 100.0), ref, rtol=1e-5, atol=1e-6)
    assert nets.load_network(saved / "uncond")[1]["kind"] == "diffusers"
    with pytest.raises(ValueError, match="not a saved diffusers pipeline"):
        nets.load_pipeline(saved)
    with pytest.raises(ValueError, match="does not exist"):
        nets.load_pipeline(saved / "nothing")
    with pytest.raises(ValueError, match="dtype must be"):
        nets.load_pipeline(saved / "uncond", dtype="float64")


def test_analysis_from_the_loader(saved):
    """The acceptance path: from the loader, the regime map, a Jacobian spectrum and (class-conditional
    variant) the joint-chain entropy estimate, on images given as (N, C, H, W) arrays."""
    rng = np.random.default_rng(7)
    images = np.clip(0.4 * rng.standard_normal((24, 3, SIZE, SIZE)), -1, 1)
    model = nets.load_pipeline(saved / "uncond")
    rm = sd.regime_map(model, images[:12], images[12:], [50.0, 400.0], n_points=8, rng=0)
    assert rm.regime.shape == (2,) and set(rm.regime) <= set(sd.REGIMES)
    vals = model.jacobian_spectrum(images[0].reshape(-1), 400.0, k=3)
    assert vals.shape == (3,) and np.all(np.isfinite(vals))

    cond = nets.load_pipeline(saved / "cond", null_class=3)
    assert cond.classes.tolist() == [0, 1, 2]
    rm = sd.regime_map(
        cond, images[:12], images[12:], [400.0], labels=np.arange(12) % 3, n_points=8, consistency_steps=8, rng=0
    )
    assert rm.consistency is not None and np.isfinite(rm.consistency).all()
    # the joint-chain estimator needs no null prediction: it runs on the network without one too
    for model in (cond, nets.load_pipeline(saved / "cond")):
        est = sd.entropy_rate(model, np.linspace(50.0, 900.0, 6), n=3, rng=1, n_bootstrap=10)
        assert est.method == "online" and est.n == 3 * len(model.classes) and np.all(np.isfinite(est.entropy))
    with pytest.raises(ValueError, match="null class"):
        sd.regime_map(nets.load_pipeline(saved / "cond"), images[:12], images[12:], [400.0], n_points=8)


# -- bug 5: image layout ----------------------------------------------------------------------------------


def test_image_layout_errors_name_the_argument(saved):
    model = nets.load_pipeline(saved / "uncond")
    rng = np.random.default_rng(8)
    good = np.clip(0.4 * rng.standard_normal((8, 3, SIZE, SIZE)), -1, 1)
    u8 = rng.integers(0, 256, size=(8, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="train has integer pixels"):
        sd.regime_map(model, u8, good, [100.0], n_points=4)
    with pytest.raises(ValueError, match=r"held_out has shape .*\(N, H, W, C\).*transpose\(0, 3, 1, 2\)"):
        sd.regime_map(model, good, good.transpose(0, 2, 3, 1), [100.0], n_points=4)
    with pytest.raises(ValueError, match=r"train has values in \[.*\], outside \[-1, 1\]"):
        sd.regime_map(model, (good + 1) * 127.5, good, [100.0], n_points=4)
    # an ImageDataset is taken in the (C, H, W) layout
    ds = sd.datasets.ImageDataset(u8, np.zeros(8, dtype=np.int64), ("a",), "test") if hasattr(sd, "datasets") else None
    if ds is None:
        from statphys_diffusion import datasets

        ds = datasets.ImageDataset(u8, np.zeros(8, dtype=np.int64), ("a",), "test")
    rm = sd.regime_map(model, ds, ds, [300.0], n_points=4, rng=0)
    assert rm.regime.shape == (1,)
