"""Samples of a trained run, their class agreement and FD_own against held-out images.

The run comes from the CLI, e.g.

    statphys-diffusion train --size 16 --config small --conditional --steps 15000 --lr 5e-4 --out runs/small16

This script:
1. Trains the package's SmallCNN classifier on the run's training images at the run's
   resolution, and reports its accuracy on the CIFAR-10 test split.
2. Draws samples per class (class-conditional DDPM ancestral steps) and unconditional
   ones from the run's EMA network.
3. Reports how often the classifier agrees with the conditioning class.
4. Reports FD_own, the Frechet distance in the classifier's feature space (Inception
   weights are not available here), between unconditional samples and test images,
   next to the same distance between two halves of the test images (the floor set by
   finite samples).

``--run`` is that run directory or a weights file written by ``export_weights``; by default the
committed float16 weights of that configuration (``weights/small-7d5bc70ad476b6a6.fp16.pt``), so
the script reruns without retraining.

Writes figures/ddpm_samples.png and figures/ddpm_samples.json. Usage:
    python validation/ddpm_samples.py [--run runs/small16 | --run weights/small-....fp16.pt] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from statphys_diffusion import datasets
from statphys_diffusion.datasets import network_layout
from statphys_diffusion.metrics import frechet_distance
from statphys_diffusion.nets import classifier as clf
from statphys_diffusion.nets.run import load_network, sample_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402
import _experiment as ex  # noqa: E402

FIGURES = _driver.FIGURES
DEFAULT_RUN = Path(__file__).resolve().parents[1] / "weights" / "small-7d5bc70ad476b6a6.fp16.pt"


@dataclass(frozen=True)
class Config:
    """One mode's sizes: FULL made the committed outputs, QUICK checks the pipeline."""

    mode: str
    classifier_steps: int
    per_class: int  # conditional samples per class
    sampling_steps: int | None  # None: the --steps option
    n_unconditional: int


FULL = Config("full", 3000, 32, None, 1000)
QUICK = Config("quick", 200, 4, 20, 64)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(DEFAULT_RUN), help="run directory or weights file")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=250, help="DDPM sampling steps")
    p.add_argument("--out", default=str(FIGURES))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = QUICK if args.quick else FULL
    t0 = time.time()
    _, meta = load_network(args.run)
    size, names = meta["size"], meta["class_names"]
    kw = {"size": size, "classes": names, "grayscale": meta["in_channels"] == 1, "progress": False}
    train = datasets.load_cifar10(None, "train", **kw)
    test = datasets.load_cifar10(None, "test", **kw)
    torch.manual_seed(0)
    net = clf.SmallCNN(meta["in_channels"], len(names), width=32)
    clf.train_classifier(net, network_layout(train.images), train.labels, steps=cfg.classifier_steps, batch_size=128)
    with torch.no_grad():
        acc = float((net(torch.as_tensor(network_layout(test.images))).argmax(1).numpy() == test.labels).mean())
    per_class = cfg.per_class
    steps = args.steps if cfg.sampling_steps is None else cfg.sampling_steps
    grids, agree = [], {}
    for c, name in enumerate(names):
        imgs = sample_run(args.run, per_class, steps=steps, y=name, seed=c, progress=False)
        with torch.no_grad():
            pred = net(torch.as_tensor(network_layout(imgs))).argmax(1).numpy()
        agree[name] = float(np.mean(pred == c))
        grids.append(imgs[:8])
    n_unc = cfg.n_unconditional
    unc = sample_run(args.run, n_unc, steps=steps, seed=100, progress=not args.quick)
    f_test = clf.features(net, network_layout(test.images))
    f_unc = clf.features(net, network_layout(unc))
    half = f_test.shape[0] // 2
    rng = np.random.default_rng(0)
    perm = rng.permutation(f_test.shape[0])
    fd_floor = frechet_distance(f_test[perm[:n_unc]], f_test[perm[half : half + n_unc]])
    fd = frechet_distance(f_unc, f_test[perm[:half]])
    summary = {
        "run": args.run,
        "run_meta": meta,
        "classifier_test_accuracy": acc,
        "conditional_agreement": agree,
        "conditional_agreement_mean": float(np.mean(list(agree.values()))),
        "samples_per_class": per_class,
        "sampling_steps": steps,
        "fd_own_unconditional_vs_test": fd,
        "fd_own_test_vs_test_same_sizes": fd_floor,
        "n_unconditional": n_unc,
        "seconds": time.time() - t0,
        "note": "FD_own: Frechet distance in the features of the package's own classifier, not Inception",
    }
    summary["provenance"] = ex.provenance(dict(vars(cfg), run=args.run), None, summary["seconds"])
    (out / "ddpm_samples.json").write_text(json.dumps(summary, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(8, per_class)
    fig, axes = plt.subplots(len(names), cols, figsize=(cols, len(names) * 1.05), squeeze=False)
    for r, imgs in enumerate(grids):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(imgs[c].squeeze(), cmap="gray" if imgs.shape[-1] == 1 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{names[r]}\n{agree[names[r]]:.0%}", fontsize=6, rotation=0, ha="right", va="center")
    _driver.save_figure(
        fig,
        out / "ddpm_samples.png",
        f"Class-conditional samples, {meta['config']} UNet, {meta['size']}x{meta['size']}, "
        f"{meta['train']['steps']} steps (left: classifier agreement)",
        dpi=130,
        fontsize=8,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "run_meta"}, indent=2))
    return summary


if __name__ == "__main__":
    main()
