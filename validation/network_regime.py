"""Where do the package's CIFAR-10 networks stand? The regime map (sd.regime_map) of three networks.

1. ``copy-eps``, ``copy-x0``, ``copy-edm``: the ``tiny`` UNet trained on N = 4 CIFAR-10 training
   images at 16 x 16 (3,000 steps of batch 32, lr 2e-3, EMA 0.995), built to memorise, with three
   objectives: the package's default (eps target, uniform DDPM index), the x0 target with noise
   levels uniform in log-SNR, and EDM preconditioning with EDM's log-normal noise levels
   (Karras et al. 2022). Same images, same budget: where each one converges at low noise.
2. ``small-conditional``: the class-conditional ``small`` UNet of validation/_networks.py
   (all 50,000 training images, 15,000 steps; cached by configuration hash, trained first if
   absent: about 40 minutes on 2 cores), with the Bayes-consistency residual along 100-step
   unconditional chains.

References: the exact empirical model of each network's training images; the Gaussian of 5,000
CIFAR-10 training images (full covariance) and, for the conditional network, the class-Gaussian
mixture of its training images. Held-out points: CIFAR-10 test images. Times are DDPM
linear-schedule steps.

Writes figures/network_regime.{csv,json,png}. Usage:
    python validation/network_regime.py [--quick] [--runs runs] [--data cifar10-jpeg.zip]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402
import _experiment as ex  # noqa: E402
import _networks  # noqa: E402

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion._io import atomic_write_text, write_rows_csv  # noqa: E402

COPY = {
    "full": {"size": 16, "n": 4, "steps": 3000, "batch_size": 32, "n_points": 128, "n_times": 12, "chain": 100},
    "quick": {"size": 8, "n": 2, "steps": 30, "batch_size": 8, "n_points": 8, "n_times": 3, "chain": 5},
}
TWINS = {
    "copy-eps": {"prediction": "eps", "noise": "uniform"},
    "copy-x0": {"prediction": "x0", "noise": "logsnr"},
    "copy-edm": {"prediction": "edm", "noise": "lognormal"},
}


def _copy_network(name, cfg, args):
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import cached_run, load_run

    tc = TrainConfig(steps=cfg["steps"], batch_size=cfg["batch_size"], lr=2e-3, ema_decay=0.995, **TWINS[name])
    run = cached_run(
        args.runs,
        data_path=args.data_path,
        size=cfg["size"],
        n=cfg["n"],
        config="tiny",
        train_config=tc,
        progress=False,
    )
    return load_run(run)


def _conditional(args, net_cfg, cfg, times, rng, maps, summary) -> list[dict]:
    """The regime map of the cached class-conditional network (trained first if absent)."""
    from statphys_diffusion import datasets

    t0 = time.time()
    model, meta = _networks.conditional_network(dict(net_cfg, progress=not args.quick))
    tr_set = _networks.training_set(net_cfg)
    x_train = _networks.flat_points(tr_set.images)
    held_c = _networks.flat_points(
        datasets.load_cifar10(args.data_path, "test", n=2000, size=net_cfg["size"], seed=1, progress=False).images
    )
    pool_c = x_train[np.random.default_rng(2).choice(x_train.shape[0], min(5000, x_train.shape[0]), replace=False)]
    refs = {
        "empirical": sd.EmpiricalDistribution(x_train, schedule=model.schedule),
        "gaussian": sd.GaussianMixture.fit(pool_c, schedule=model.schedule),
        "class_gaussian": sd.GaussianMixture.fit(x_train, tr_set.labels, schedule=model.schedule),
    }
    rm = sd.regime_map(
        model,
        x_train,
        held_c,
        times,
        references=refs,
        n_points=cfg["n_points"],
        consistency_steps=cfg["chain"],
        rng=rng,
        progress=not args.quick,
    )
    maps["small-conditional"] = rm
    summary["networks"]["small-conditional"] = {
        "n_train": int(x_train.shape[0]),
        "train": meta["train"],
        "config": meta["config"],
        "regime": rm.regime.tolist(),
        "consistency": rm.consistency.tolist(),
        "seconds": round(time.time() - t0, 1),
    }
    print("small-conditional", rm, flush=True)
    return [dict(network="small-conditional", **r) for r in rm.to_rows()]


def main(argv=None):
    p = _networks.parser(__doc__, "tiny budgets, 8 x 8, three times: the pipeline only")
    p.add_argument(
        "--networks",
        default="copy-eps,copy-x0,copy-edm,small-conditional",
        help="comma-separated subset of copy-eps, copy-x0, copy-edm, small-conditional (default: all)",
    )
    args = p.parse_args(argv)
    chosen = [n.strip() for n in args.networks.split(",") if n.strip()]
    unknown = set(chosen) - {*TWINS, "small-conditional"}
    if unknown or not chosen:
        raise SystemExit(f"--networks: unknown {sorted(unknown)}; choose from {[*TWINS, 'small-conditional']}")
    import torch

    from statphys_diffusion import datasets

    torch.set_num_threads(2)
    timer = ex.Timer()
    net_cfg, out = _networks.setup(args)
    args.data_path = net_cfg["data"]
    mode = "quick" if args.quick else "full"
    cfg = COPY[mode]
    size = cfg["size"]
    times = np.geomspace(2.0, 900.0, cfg["n_times"])
    rng = np.random.default_rng(0)
    test = datasets.load_cifar10(args.data_path, "test", n=2000, size=size, seed=1, progress=False)
    held = _networks.flat_points(test.images)
    pool = datasets.load_cifar10(args.data_path, "train", n=5000, size=size, seed=2, progress=False)
    x_pool = _networks.flat_points(pool.images)
    rows, summary, maps = [], {"mode": mode, "times": times.tolist(), "networks": {}}, {}
    for name in (n for n in TWINS if n in chosen):
        t0 = time.time()
        model, meta = _copy_network(name, cfg, args)
        train = _networks.flat_points(
            datasets.load_cifar10(args.data_path, "train", n=cfg["n"], size=size, seed=0, progress=False).images
        )
        refs = {
            "empirical": sd.EmpiricalDistribution(train, schedule=model.schedule),
            "gaussian": sd.GaussianMixture.fit(x_pool, schedule=model.schedule),
        }
        rm = sd.regime_map(model, train, held, times, references=refs, n_points=cfg["n_points"], rng=rng)
        maps[name] = rm
        summary["networks"][name] = {
            "n_train": int(train.shape[0]),
            "train": meta["train"],
            "regime": rm.regime.tolist(),
            "seconds": round(time.time() - t0, 1),
        }
        rows += [dict(network=name, **r) for r in rm.to_rows()]
        print(name, rm, flush=True)

    if "small-conditional" in chosen:
        rows += _conditional(args, net_cfg, cfg, times, rng, maps, summary)
    suffix = "_quick" if args.quick else ""
    write_rows_csv(out / f"network_regime{suffix}.csv", rows)
    summary["provenance"] = ex.provenance(dict(cfg, networks=chosen), None, timer.seconds)
    atomic_write_text(out / f"network_regime{suffix}.json", json.dumps(summary, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(2, len(maps))
    nrow = -(-len(maps) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 4.8 * nrow), squeeze=False)
    for ax in axes.ravel()[len(maps) :]:
        ax.set_visible(False)
    for ax, (name, m) in zip(axes.ravel(), maps.items()):
        m.plot(ax, time_label="t (DDPM steps)")
        ax.set_title(name)
    _driver.save_figure(fig, out / f"network_regime{suffix}.png", dpi=110)
    return rows, summary


if __name__ == "__main__":
    main()
