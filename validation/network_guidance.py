"""Result 3 on a trained network: dynamic negative guidance against constant negative prompting.

A class-conditional UNet trained on CIFAR-10 at 16 x 16 (the "small" configuration,
15,000 steps; cached by configuration hash under --runs, about 40 minutes on 2 cores
the first time) removes one class ("automobile" by default) while sampling with DDPM
ancestral steps. Methods:

* none: unguided samples (the removed class at its prior weight 1/10);
* NP: constant negative prompting s - w (s(x | c) - s(x)) over a sweep of w;
* DNG online (Bayes): the online posterior along the chain (docs/user_guide/conventions.rst), w_t = p / (1 - p),
  times a scale;
* DNG online (reference): the reference code's settings (prior 0.01, temperature 0.2,
  offset 2e-4, p_max 0.8, scale 5).

Measured with the package's own classifier (a SmallCNN on clean 16 x 16 training
images, cached): the removed-class rate, the balance of the other nine classes (KL of
their predicted frequencies from uniform), and FD_own (Frechet distance in that
classifier's feature space; Inception weights are not available here) against
test images of the nine kept classes, next to the same distance between two sets
of test images (the finite-sample floor). There is no exact safe distribution for
a network, so the reference for the removed-class rate is the classifier's own error
rate on kept-class test images (how often it calls a real non-automobile an automobile).

Jobs (method, scale) run through sd.run_sweep and are cached. Usage:
    python validation/network_guidance.py [--quick] [--runs runs] [--scheduler tcp://...]
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
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.metrics import frechet_distance

REFERENCE = {"prior": 0.01, "temperature": 0.2, "offset": 2e-4, "p_max": 0.8}


def _setup(cfg: dict):
    """The conditional network, the evaluation classifier and the test set (all cached)."""
    from statphys_diffusion import datasets

    model, meta = _networks.conditional_network(cfg)
    test = datasets.load_cifar10(cfg["data"], "test", size=cfg["size"], progress=False)
    return model, meta, _networks.evaluation_classifier(cfg), test


def job(cfg: dict) -> dict:
    import torch

    from statphys_diffusion.nets import classifier as clf
    from statphys_diffusion.samplers import DDPMAncestral

    t0 = time.time()
    torch.set_num_threads(int(cfg.get("threads", 2)))
    model, meta, net, test = _setup(cfg)
    names = meta["class_names"]
    removed = names.index(cfg["removed"])
    method, scale = cfg["method"], float(cfg["scale"])
    if method == "none":
        target = model
    elif method == "NP":
        target = sd.NegativePrompting(model, [removed], scale)
    elif method == "DNG online (Bayes)":
        target = sd.DynamicNegativeGuidance(model, [removed], posterior="online", scale=scale)
    elif method == "DNG online (reference)":
        target = sd.DynamicNegativeGuidance(model, [removed], posterior="online", scale=scale, **REFERENCE)
    else:
        raise ValueError(f"unknown method {method!r}")
    rng = np.random.default_rng(cfg["seed"])
    draws = DDPMAncestral(cfg["sample_steps"], progress=False).sample(target, n=cfg["n_samples"], rng=rng)
    c, h = meta["in_channels"], meta["size"]
    imgs = np.clip(draws.x.reshape(-1, c, h, h), -1, 1).astype(np.float32)
    with torch.no_grad():
        pred = net(torch.as_tensor(imgs)).argmax(1).numpy()
    kept = [i for i in range(len(names)) if i != removed]
    freq = np.array([np.mean(pred == k) for k in kept])
    q = freq / max(freq.sum(), 1e-12)
    balance = float(np.sum(np.where(q > 0, q * np.log(np.maximum(q, 1e-300) * len(kept)), 0.0)))
    test_kept = test.images[test.labels != removed]
    f_test = clf.features(net, _networks.net_images(test_kept))
    f_s = clf.features(net, imgs)
    fd = frechet_distance(f_s, f_test)
    return {
        "method": method,
        "scale": scale,
        "n": int(imgs.shape[0]),
        "removed_rate": float(np.mean(pred == removed)),
        "balance_kl": balance,
        "fd_own_vs_kept_test": float(fd),
        "seconds": time.time() - t0,
    }


def references(cfg: dict) -> dict:
    """Classifier accuracy, its false-removed rate on kept test images, and the FD_own floor."""
    import torch

    from statphys_diffusion.nets import classifier as clf

    model, meta, net, test = _setup(cfg)
    removed = meta["class_names"].index(cfg["removed"])
    x = _networks.net_images(test.images)
    with torch.no_grad():
        pred = net(torch.as_tensor(x)).argmax(1).numpy()
    kept = test.labels != removed
    f = clf.features(net, x[kept])
    rng = np.random.default_rng(0)
    perm = rng.permutation(f.shape[0])
    n = cfg["n_samples"]
    return {
        "classifier_test_accuracy": float(np.mean(pred == test.labels)),
        "false_removed_rate_on_kept_test": float(np.mean(pred[kept] == removed)),
        "removed_recall_on_removed_test": float(np.mean(pred[~kept] == removed)),
        "fd_own_floor_n_vs_rest": float(frechet_distance(f[perm[:n]], f[perm[n:]])),
    }


# one configuration per mode (issue 34's experiment shape): sampler steps, samples per method, and the
# (method, scale) sweep; "full" made the committed outputs
SWEEPS = {
    "full": {
        "sample_steps": 100,
        "n_samples": 500,
        "sweep": (
            ("none", 0.0),
            ("NP", 0.5),
            ("NP", 1.0),
            ("NP", 2.0),
            ("NP", 4.0),
            ("DNG online (Bayes)", 1.0),
            ("DNG online (Bayes)", 2.0),
            ("DNG online (Bayes)", 5.0),
            ("DNG online (reference)", 5.0),
        ),
    },  # fmt: skip
    "quick": {
        "sample_steps": 10,
        "n_samples": 32,
        "sweep": (("none", 0.0), ("NP", 1.0), ("DNG online (Bayes)", 1.0), ("DNG online (reference)", 5.0)),
    },
}


def main(argv=None):
    p = _networks.parser(__doc__, "a few-step network on 8 x 8 images: the pipeline only")
    p.add_argument("--removed", default="automobile")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    base, out = _networks.setup(args)
    mode = SWEEPS["quick" if args.quick else "full"]
    base.update(sample_steps=mode["sample_steps"], n_samples=mode["n_samples"])
    sweep = list(mode["sweep"])
    base.update(removed=args.removed, seed=0, threads=2, progress=False)
    t0 = time.time()
    refs = references(base)  # trains (or loads) the network and the classifier once, before the jobs
    configs = [dict(base, method=m, scale=w) for m, w in sweep]
    cache = Path(args.runs) / ("guidance-quick" if args.quick else "guidance") / "results"
    rows = sd.run_sweep(job, configs, cache_dir=cache, scheduler=args.scheduler, workers=args.workers, desc="guidance")
    tag = "_quick" if args.quick else ""
    write_rows_csv(out / f"network_guidance{tag}.csv", rows)
    summary = {
        "quick": args.quick,
        "removed": args.removed,
        **refs,
        "seconds": time.time() - t0,
    }
    config = {k: v for k, v in base.items() if k not in ("runs", "data")}  # in the provenance block only
    summary["provenance"] = ex.provenance(config, None, summary["seconds"])
    (out / f"network_guidance{tag}.json").write_text(json.dumps(summary, indent=2, default=float))
    _plot(rows, refs, out / f"network_guidance{tag}.png", args.removed)
    print(json.dumps(summary, indent=2, default=float))
    return rows, summary


def _plot(rows, refs, path: Path, removed: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    styles = {"NP": ("C0", "o-"), "DNG online (Bayes)": ("C2", "s-"), "DNG online (reference)": ("C3", "D")}
    base = next(r for r in rows if r["method"] == "none")
    for ax, key, lab in (
        (axes[0], "removed_rate", f"samples classified '{removed}'"),
        (axes[1], "balance_kl", "KL(kept-class frequencies || uniform)"),
        (axes[2], "fd_own_vs_kept_test", "FD_own to kept-class test images"),
    ):
        for m, (col, fmt) in styles.items():
            sel = sorted((r for r in rows if r["method"] == m), key=lambda r: r["scale"])
            if sel:
                ax.plot([r["scale"] for r in sel], [r[key] for r in sel], fmt, color=col, label=m)
        ax.axhline(base[key], color="grey", ls="--", lw=1, label="no guidance")
        if key == "removed_rate":
            ax.axhline(
                refs["false_removed_rate_on_kept_test"],
                color="k",
                ls=":",
                lw=1,
                label="classifier's false rate on real kept images",
            )
        if key == "fd_own_vs_kept_test":
            ax.axhline(refs["fd_own_floor_n_vs_rest"], color="k", ls=":", lw=1, label="test-vs-test floor")
        ax.set_xlabel("guidance scale w")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    _driver.save_figure(
        fig,
        path,
        f"Removing '{removed}' from a class-conditional DDPM (CIFAR-10 16 x 16), "
        f"classifier accuracy {refs['classifier_test_accuracy']:.2f}",
        dpi=120,
    )


if __name__ == "__main__":
    main()
