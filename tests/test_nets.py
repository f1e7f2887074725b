"""Torch side: the adapter's conventions, Lanczos against a dense Jacobian, training, resume after kill."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion import nets  # noqa: E402


def test_adapter_score_is_minus_eps_over_sigma_with_the_right_time_input():
    torch.manual_seed(0)
    net = nets.MLPDenoiser(3, hidden=16, depth=1).double()
    x = np.random.default_rng(0).standard_normal((5, 3))
    for schedule, tau in ((sd.OrnsteinUhlenbeck(), 0.7), (sd.DiscreteSchedule.linear(1000), 0.7 * 1000)):
        t = tau if isinstance(schedule, sd.DiscreteSchedule) else 0.7
        model = nets.TorchScoreModel(net, schedule)
        tau_in = t - 1.0 if isinstance(schedule, sd.DiscreteSchedule) else t  # DDPM index = t - 1
        with torch.no_grad():
            eps = net(torch.as_tensor(x), torch.full((5,), tau_in, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(model.score(x, t), -eps / float(schedule.sigma(t)), rtol=1e-12)
        a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
        np.testing.assert_allclose(model.denoise(x, t), (x - s * eps) / a, rtol=1e-12)


def test_adapter_reshapes_images_and_conditions_on_classes():
    torch.manual_seed(1)
    net = nets.build("tiny", in_channels=1, n_classes=3).double()
    model = nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck(), image_shape=(1, 8, 8), classes=[10, 20, 30])
    x = np.random.default_rng(1).standard_normal((4, 64))
    with torch.no_grad():
        ref = net(
            torch.as_tensor(x).reshape(4, 1, 8, 8), torch.full((4,), 0.5, dtype=torch.float64), torch.tensor([2] * 4)
        )
    np.testing.assert_allclose(model.eps(x, 0.5, y=30), ref.reshape(4, 64).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown classes"):
        model.eps(x, 0.5, y=40)
    with pytest.raises(ValueError, match="shape"):
        model.eps(np.zeros((2, 63)), 0.5)


def test_lanczos_top_eigenvalues_match_the_dense_jacobian():
    torch.manual_seed(2)
    net = nets.MLPDenoiser(8, hidden=32, depth=2).double()
    model = nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck())
    x = np.random.default_rng(2).standard_normal(8)
    dense = model.dense_jacobian(x, 0.4)
    ref = np.sort(np.linalg.eigvalsh(0.5 * (dense + dense.T)))[::-1][:3]
    np.testing.assert_allclose(model.jacobian_spectrum(x, 0.4, k=3, tol=1e-12), ref, rtol=1e-8, atol=1e-10)
    v = np.random.default_rng(3).standard_normal((1, 8))
    np.testing.assert_allclose(model.jvp(x[None], 0.4, v)[0], dense @ v[0], rtol=1e-10)
    np.testing.assert_allclose(model.vjp(x[None], 0.4, v)[0], dense.T @ v[0], rtol=1e-10)
    # hvp: the symmetrised Hessian of log p_t, against central differences of the score
    sch = model.schedule
    a, s2 = float(sch.alpha(0.4)), float(sch.sigma2(0.4))
    h = 1e-5
    fd = (model.score(x[None] + h * v, 0.4) - model.score(x[None] - h * v, 0.4))[0] / (2 * h)
    fd_t = (a * dense.T @ v[0] - v[0]) / s2  # the transpose part, from the dense Jacobian
    np.testing.assert_allclose(model.hvp(x[None], 0.4, v)[0], 0.5 * (fd + fd_t), rtol=1e-7, atol=1e-8)


def test_tiny_ddpm_approaches_the_exact_score_of_a_2d_mixture():
    gm = sd.GaussianMixture.isotropic([[-1.5, 0.0], [1.5, 0.5], [0.0, -1.5]], 0.1)
    data = gm.sample(4000, 0.0, rng=np.random.default_rng(0)).x0
    net = nets.MLPDenoiser(2, hidden=64, depth=2)
    rng = np.random.default_rng(1)
    probe = [(t, gm.sample(500, t, rng=rng).x) for t in (0.1, 0.4, 1.0)]

    def err(module):
        model = nets.TorchScoreModel(module, gm.schedule)
        return np.mean(
            [np.mean((model.eps(x, t) + float(gm.schedule.sigma(t)) * gm.score(x, t)) ** 2) for t, x in probe]
        )

    before = err(net)
    cfg = nets.TrainConfig(steps=600, batch_size=256, lr=3e-3, ema_decay=0.99, seed=0, checkpoint_every=1000)
    res = nets.train(net, data, gm.schedule, cfg, progress=False)
    after = err(res.ema)
    # epsilon-prediction error against the exact mixture's -sigma * score: measured ~0.9 -> ~0.05
    assert after < 0.2 * before
    assert np.mean(res.losses[-100:]) < np.mean(res.losses[:100])


_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    import statphys_diffusion as sd
    from statphys_diffusion import nets
    torch.set_num_threads(1)
    gm = sd.GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.0]], 0.1)
    data = gm.sample(500, 0.0, rng=np.random.default_rng(0)).x0
    torch.manual_seed(0)  # the initial weights: seed before building the network
    net = nets.MLPDenoiser(2, hidden=32, depth=1)
    cfg = nets.TrainConfig(steps=int(sys.argv[2]), batch_size=64, seed=3, checkpoint_every=20)
    slow = len(sys.argv) > 3
    cb = (lambda step, n, e: __import__("time").sleep(0.02)) if slow else None
    res = nets.train(net, data, gm.schedule, cfg, checkpoint=sys.argv[1], progress=False, callback=cb)
    torch.save({"net": res.net.state_dict(), "ema": res.ema.state_dict(), "losses": res.losses}, sys.argv[1] + ".final")
    """
)


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    # uninterrupted
    ref = tmp_path / "ref.pt"
    subprocess.run([sys.executable, str(script), str(ref), "200"], check=True, env=env, timeout=300)
    # killed with SIGKILL once a checkpoint exists, then resumed from it
    ck = tmp_path / "ck.pt"
    proc = subprocess.Popen([sys.executable, str(script), str(ck), "200", "slow"], env=env)
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists() and not (tmp_path / "ck.pt.final").exists()
    step_at_kill = torch.load(ck, weights_only=False)["step"]
    assert 0 < step_at_kill < 200
    subprocess.run([sys.executable, str(script), str(ck), "200"], check=True, env=env, timeout=300)
    a = torch.load(str(ref) + ".final", weights_only=False)
    b = torch.load(str(ck) + ".final", weights_only=False)
    assert a["losses"] == b["losses"]
    for k in a["net"]:
        assert torch.equal(a["net"][k], b["net"][k]) and torch.equal(a["ema"][k], b["ema"][k])


def test_bad_input():
    net = nets.MLPDenoiser(2, hidden=8, depth=1)
    with pytest.raises(ValueError, match="Module"):
        nets.TorchScoreModel(object(), sd.OrnsteinUhlenbeck())
    with pytest.raises(ValueError, match="time_input"):
        nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck(), time_input="steps")
    with pytest.raises(ValueError, match="DiscreteSchedule"):
        nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck(), time_input="index")
    model = nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck())
    with pytest.raises(ValueError, match="classifier"):
        model.class_posterior(np.zeros((1, 2)), 0.5)
    with pytest.raises(ValueError, match="without classes"):
        model.eps(np.zeros((1, 2)), 0.5, y=1)
    with pytest.raises(ValueError, match="labels"):
        nets.train(net, np.zeros((10, 2)), sd.OrnsteinUhlenbeck(), labels=np.zeros(3), n_classes=2, progress=False)
    with pytest.raises(ValueError, match="config"):
        nets.build("huge")


def test_train_and_sample_commands_end_to_end(tmp_path):
    from PIL import Image

    from statphys_diffusion import cli

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        d = tmp_path / "tree" / "train" / c
        d.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    run = tmp_path / "run"
    args = ["train", "--data-path", str(tmp_path / "tree"), "--size", "8", "--steps", "6", "--batch-size", "4"]
    args += ["--conditional", "--out", str(run), "--no-progress"]
    assert cli.main(args) == 0
    assert (run / "run.json").is_file() and (run / "checkpoint.pt").is_file()
    # rerunning the finished command resumes at the last step and does nothing more
    assert cli.main(args) == 0
    out = tmp_path / "s.npz"
    assert (
        cli.main(
            [
                "sample",
                "--run",
                str(run),
                "--n",
                "4",
                "--steps",
                "5",
                "--class",
                "dog",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    imgs = np.load(out)["images"]
    assert imgs.shape == (4, 8, 8, 3) and imgs.dtype == np.uint8 and out.with_suffix(".png").is_file()
    assert cli.main(["sample", "--run", str(run), "--class", "horse", "--out", str(out), "--no-progress"]) == 2
    assert cli.main(["sample", "--run", str(tmp_path / "nope"), "--out", str(out)]) == 2
    # an output path that cannot be created is refused before sampling, with the option's name
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bad = ["sample", "--run", str(run), "--n", "2", "--steps", "2", "--out", str(blocker / "s.npz"), "--no-progress"]
    assert cli.main(bad) == 2


def test_classifier_learns_and_serves_as_posterior_and_feature_space():
    from statphys_diffusion.metrics import frechet_distance
    from statphys_diffusion.nets import classifier as clf

    rng = np.random.default_rng(0)
    # two classes of 8 x 8 images: a bright blob on the left or on the right half
    x = 0.3 * rng.standard_normal((400, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, 400)
    x[y == 0, :, :, :4] += 1.0
    x[y == 1, :, :, 4:] += 1.0
    torch.manual_seed(0)
    net = clf.SmallCNN(1, 2, width=8)
    losses = clf.train_classifier(net, x, y, steps=150, batch_size=64, progress=False)
    with torch.no_grad():
        acc = (net(torch.as_tensor(x)).argmax(1).numpy() == y).mean()
    assert acc > 0.95 and np.mean(losses[-20:]) < np.mean(losses[:20])
    f = clf.features(net, x)
    assert f.shape == (400, net.feature_dim)
    # FD_own: the two classes are far apart in feature space, two halves of one class are close
    fa, fb = f[y == 0], f[y == 1]
    assert frechet_distance(fa[: len(fa) // 2], fa[len(fa) // 2 :]) < 0.1 * frechet_distance(fa, fb)
    # noise-conditional version as the class posterior of a wrapped network
    sch = sd.OrnsteinUhlenbeck()
    torch.manual_seed(1)
    nc = clf.SmallCNN(1, 2, width=8, noise_conditional=True)
    clf.train_classifier(nc, x, y, steps=150, batch_size=64, schedule=sch, progress=False)
    model = nets.TorchScoreModel(
        nets.MLPDenoiser(64, hidden=8, depth=1),
        sch,
        classes=[0, 1],
        classifier=clf.log_posterior_fn(nc, sch, (1, 8, 8)),
    )
    xt = 0.95 * x.reshape(400, 64) + 0.3 * rng.standard_normal((400, 64))
    post = model.class_posterior(xt, 0.05)
    np.testing.assert_allclose(post.sum(1), 1.0, rtol=1e-6)
    assert (post.argmax(1) == y).mean() > 0.9


def test_analysis_tools_take_a_wrapped_network():
    # a class-conditional MLP, untrained: the tools only need the protocol, and must run and agree
    # with direct computations where one exists
    torch.manual_seed(5)
    net = nets.MLPDenoiser(3, hidden=16, depth=1, n_classes=2).double()
    model = nets.TorchScoreModel(net, sd.OrnsteinUhlenbeck(), classes=[0, 1])
    x = np.random.default_rng(0).standard_normal((6, 3))
    basis = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 2)))[0]
    tj = sd.tangent_jacobian(model, x, 0.5, basis, n_normal_probes=2)
    u0 = np.broadcast_to(basis[:, 0], x.shape)
    ref = np.einsum("ij,ij->i", model.jvp(x, 0.5, u0), u0)
    np.testing.assert_allclose(tj.tangent[:, 0], ref, rtol=1e-5, atol=1e-7)  # central differences vs forward mode
    census = sd.attractor_census(model, x, 0.5, max_iter=50)
    assert census.assignment.shape == (6,)
    rng = np.random.default_rng(2)
    track = sd.OnlineClassifier(20, prior="uniform").run(model, x_init=x, t_start=2.0, t_end=0.1, rng=rng)
    np.testing.assert_allclose(track.posterior.sum(axis=2), 1.0, atol=1e-12)
    g = sd.DynamicNegativeGuidance(model, 1, posterior="online", prior=0.5)
    assert np.all(np.isfinite(sd.samplers.DDPMAncestral(10).sample(g, x_init=x, t_start=2.0, t_end=0.1).x))
    im = sd.mutual_information_immse(model, [0.5], data=(x, np.array([0, 1] * 3)), rng=np.random.default_rng(3))
    assert np.isfinite(im.value[0]) and im.value[0] >= 0


def test_cached_run_trains_once_and_keys_on_the_configuration(tmp_path):
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import cached_run, run_key

    rng = np.random.default_rng(0)
    ds = datasets.ImageDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.zeros(6, int), ("a",), "mem")
    tc = nets.TrainConfig(steps=3, batch_size=4, checkpoint_every=1)
    kw = dict(size=8, n=6, config="tiny", train_config=tc)
    out = cached_run(tmp_path, dataset=ds, progress=False, **kw)
    stamp = (out / "checkpoint.pt").stat().st_mtime_ns
    assert cached_run(tmp_path, dataset=ds, progress=False, **kw) == out
    assert (out / "checkpoint.pt").stat().st_mtime_ns == stamp  # reused, not retrained
    other = cached_run(
        tmp_path, dataset=ds, progress=False, **dict(kw, train_config=nets.TrainConfig(steps=4, batch_size=4))
    )
    assert other != out and other.parent == out.parent
    assert run_key(**kw)["train"]["steps"] == 3
    with pytest.raises(ValueError, match="unknown run arguments"):
        run_key(lr=1.0)


def test_exported_float16_weights_rebuild_the_run(tmp_path):
    """export_weights -> load_weights: the same network up to float16 rounding of the weights
    (relative 2^-11 per weight; on eps of a tiny UNet that stays below 1e-2 relative), a file that
    loads with weights_only=True, and a refusal for an unfinished run."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import cached_run, export_weights, load_run, load_weights

    rng = np.random.default_rng(0)
    ds = datasets.ImageDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2, ("a", "b"), "mem")
    kw = dict(size=8, n=6, config="tiny", conditional=True, train_config=nets.TrainConfig(steps=3, batch_size=4))
    run = cached_run(tmp_path, dataset=ds, progress=False, **kw)
    path = export_weights(run, tmp_path / "w" / "tiny.fp16.pt")
    blob = torch.load(path, weights_only=True)
    assert blob["dtype"] == "float16" and all(
        v.dtype == torch.float16 for v in blob["state"].values() if v.is_floating_point()
    )
    full, meta = load_run(run)
    half, meta2 = load_weights(path)
    assert meta2 == meta
    x = rng.standard_normal((4, 192))
    e_full, e_half = full.eps(x, 300.0, y=1), half.eps(x, 300.0, y=1)
    assert np.abs(e_full - e_half).max() <= 1e-2 * np.abs(e_full).max()
    (run / "run.json").write_text((run / "run.json").read_text().replace('"steps": 3', '"steps": 30'))
    with pytest.raises(ValueError, match="has not finished"):
        export_weights(run, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_weights(tmp_path / "missing.pt")


def test_init_weights_warm_restart_starts_from_the_file_and_is_part_of_the_key(tmp_path):
    """train_images(init_weights=...): with a learning rate of 1e-12 and one step the continued
    network's EMA is the file's weights (float16 values held in float32; Adam moves each weight
    by at most ~lr, far below the 1e-6 tolerance), while a fresh initialisation differs by O(0.1);
    the file (by name and content) is part of the run key and run.json; another network's file
    is refused by name."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import cached_run, export_weights, load_run, run_key

    rng = np.random.default_rng(0)
    ds = datasets.ImageDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2, ("a", "b"), "mem")
    kw = dict(size=8, n=6, config="tiny", conditional=True, train_config=nets.TrainConfig(steps=3, batch_size=4))
    first = cached_run(tmp_path / "a", dataset=ds, progress=False, **kw)
    path = export_weights(first, tmp_path / "w.fp16.pt")
    blob = torch.load(path, weights_only=True)
    warm_tc = nets.TrainConfig(steps=1, batch_size=4, lr=1e-12, seed=1)
    warm = cached_run(tmp_path / "b", dataset=ds, progress=False, **dict(kw, train_config=warm_tc, init_weights=path))
    cold = cached_run(tmp_path / "b", dataset=ds, progress=False, **dict(kw, train_config=warm_tc))
    assert warm != cold
    ema_warm = load_run(warm)[0].net.state_dict()
    ema_cold = load_run(cold)[0].net.state_dict()
    diff_warm = max((ema_warm[k].cpu() - v.float()).abs().max().item() for k, v in blob["state"].items())
    diff_cold = max((ema_cold[k].cpu() - v.float()).abs().max().item() for k, v in blob["state"].items())
    assert diff_warm < 1e-6 < 0.01 < diff_cold
    meta = json.loads((warm / "run.json").read_text())
    assert meta["init_weights"].startswith("w.fp16.pt:") and "init_weights" not in json.loads(
        (cold / "run.json").read_text()
    )
    key = run_key(**dict(kw, init_weights=path))
    assert key["init_weights"] == meta["init_weights"] and "init_weights" not in run_key(**kw)
    blob["state"] = {k: v + 1 if v.is_floating_point() else v for k, v in blob["state"].items()}
    torch.save(blob, tmp_path / "w.fp16.pt")  # same name, other content: another run
    assert run_key(**dict(kw, init_weights=path))["init_weights"] != meta["init_weights"]
    other = dict(kw, conditional=False, train_config=warm_tc, init_weights=path)
    with pytest.raises(ValueError, match="init_weights .* describes another network: conditional"):
        cached_run(tmp_path / "c", dataset=ds, progress=False, **other)
    with pytest.raises(ValueError, match="init_weights .* is not a file"):
        run_key(**dict(kw, init_weights=tmp_path / "missing.pt"))


def test_load_network_and_sample_run_take_a_run_or_its_weights_file(tmp_path):
    """A run directory and its exported weights file give the same network (to float16 rounding)
    through load_network, and sample_run draws from either; other paths are refused by name."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import cached_run, export_weights, load_network, sample_run

    rng = np.random.default_rng(1)
    ds = datasets.ImageDataset(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2, ("a", "b"), "mem")
    kw = dict(size=8, n=6, config="tiny", conditional=True, train_config=nets.TrainConfig(steps=3, batch_size=4))
    run = cached_run(tmp_path, dataset=ds, progress=False, **kw)
    path = export_weights(run, tmp_path / "tiny.fp16.pt")
    (m_run, meta_run), (m_file, meta_file) = load_network(run), load_network(path)
    assert meta_run == meta_file
    x = rng.standard_normal((3, 192))
    e_run, e_file = m_run.eps(x, 200.0, y=0), m_file.eps(x, 200.0, y=0)
    assert np.abs(e_run - e_file).max() <= 1e-2 * np.abs(e_run).max()
    for source in (run, path):
        img = sample_run(source, 2, steps=3, y="b", seed=0, progress=False)
        assert img.shape == (2, 8, 8, 3) and img.dtype == np.uint8
    with pytest.raises(ValueError, match="neither a run directory nor a weights file"):
        load_network(tmp_path / "nothing-here")
