"""Result 3: removing a class with dynamic negative guidance, against constant baselines.

Exact evaluation on Gaussian mixtures, where the safe distribution
p(x | not c) is known in closed form:

1d      three classes at -2, 0, 2 (variance 0.1, weights 0.3, 0.3, 0.4), remove 0.
2d      four classes on a circle of radius 2 (variance 0.1), remove the first.
cifar   the class-Gaussian model of CIFAR-10 at 8 x 8 (d = 192), remove "automobile".

Methods: DNG with the exact posterior, DNG with the online posterior (Bayes
defaults, and the reference code's example hyperparameters: prior 0.01,
temperature 0.2, offset 2e-4, p_max 0.8, scale 5), negative prompting over a
sweep of constant scales w, and safe latent diffusion (reference defaults, scale
sweep). DDPM ancestral sampling (OU, t from 10 to 1e-3 on the EDM grid; the
unguided run "none" shows the sampler's own bias). Metrics per seed:
removed-class mass (mean exact posterior of the removed class at t_end; the
argmax rate is also written), balance (KL of the kept classes' mean posterior
proportions from their exact ones), sliced
W1 to exact draws of the safe distribution, and mean log-likelihood under it.

Writes figures/negative_guidance.csv and .png. Usage:
    python validation/negative_guidance.py [--quick] [--part 1d|2d|cifar|all]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.metrics import sliced_wasserstein
from statphys_diffusion.samplers import DDPMAncestral

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402
import _experiment as ex  # noqa: E402

FIGURES = _driver.FIGURES
T_END = 1e-3


@dataclass(frozen=True)
class Config:
    """One mode's sizes: FULL made the committed outputs, QUICK checks the pipeline."""

    mode: str
    cifar_max_per_class: int | None  # CIFAR-10 images per class for the class-Gaussian model (None: all)
    cifar_components: int  # Gaussian components per class
    scales: tuple  # guidance scales of the constant baselines (NP, SLD)
    seeds: int  # seeds for the 1d and 2d problems
    seeds_cifar: int
    n: int  # samples per seed, 1d and 2d
    n_cifar: int
    steps: int  # DDPM ancestral steps, 1d and 2d
    steps_cifar: int

    def sizes(self, problem: str) -> tuple[int, int, int]:
        """(seeds, samples per seed, sampler steps) of a problem."""
        if problem == "cifar":
            return self.seeds_cifar, self.n_cifar, self.steps_cifar
        return self.seeds, self.n, self.steps


FULL = Config("full", None, 8, (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0), 5, 3, 2000, 400, 500, 300)
QUICK = Config("quick", 300, 4, (0.5, 2.0, 10.0), 2, 2, 300, 100, 50, 50)
REFERENCE = {"prior": 0.01, "temperature": 0.2, "offset": 2e-4, "p_max": 0.8, "scale": 5.0}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def problems(cfg: Config) -> dict:
    ang = 2 * np.pi * np.arange(4) / 4
    out = {
        "1d": (sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.0]], 0.1, [0.3, 0.3, 0.4], labels=[0, 1, 2]), 0),
        "2d": (sd.GaussianMixture.isotropic(2 * np.stack([np.cos(ang), np.sin(ang)], 1), 0.1, labels=[0, 1, 2, 3]), 0),
    }
    from statphys_diffusion import datasets

    path = datasets.find_cifar10()
    if path is not None:
        ds = datasets.load_cifar10_zip(path, "train", progress=False, max_per_class=cfg.cifar_max_per_class)
        out["cifar"] = (datasets.class_gaussian(ds, cfg.cifar_components), 1)
    return out


def safe_model(model, removed) -> sd.GaussianMixture:
    keep = model.labels != removed
    w = model.weights[keep]
    return sd.GaussianMixture.full(model.means[keep], model.covariances[keep], w / w.sum(), labels=model.labels[keep])


def methods(model, removed, cfg: Config) -> list[tuple[str, float, object]]:
    ws = list(cfg.scales)
    out = [
        ("none", 0.0, sd.NegativePrompting(model, removed, 0.0)),
        ("DNG exact", 1.0, sd.DynamicNegativeGuidance(model, removed)),
        ("DNG online (Bayes)", 1.0, sd.DynamicNegativeGuidance(model, removed, posterior="online")),
        ("DNG online (reference)", 5.0, sd.DynamicNegativeGuidance(model, removed, posterior="online", **REFERENCE)),
    ]
    out += [("NP", w, sd.NegativePrompting(model, removed, w)) for w in ws]
    out += [("SLD", w, sd.SafeLatentDiffusion(model, removed, w)) for w in ws]
    return out


def metrics(model, safe, removed, x, ref, rng) -> dict:
    """Soft class metrics from the exact posterior at t_end (argmax would misread overlapping classes)."""
    post = model.class_posterior(x, T_END)
    classes = list(model.classes)
    j = classes.index(removed)
    kept = [i for i in range(len(classes)) if i != j]
    mass = post[:, kept].mean(axis=0)
    q = mass / mass.sum()
    target = model.class_weights[kept] / model.class_weights[kept].sum()
    ll = safe.log_prob(x, T_END)
    return {
        "removed_mass": float(post[:, j].mean()),
        "removed_rate": float(np.mean(post.argmax(axis=1) == j)),
        "balance_kl": float(np.sum(q * np.log(np.maximum(q, 1e-300) / target))),
        "sw1_to_safe": sliced_wasserstein(x, ref, 64, rng),
        "loglik_safe": float(np.mean(ll)),
        "loglik_safe_median": float(np.median(ll)),
    }


def _aggregate(name, label, scale, seeds, n, steps, per_seed, seconds) -> dict:
    row = {"problem": name, "method": label, "scale": scale, "seeds": seeds, "n": n, "steps": steps}
    for k in per_seed[0]:
        vals = np.array([r[k] for r in per_seed])
        row[k] = float(vals.mean())
        row[k + "_se"] = float(vals.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("nan")
    row["seconds"] = seconds
    return row


def run_problem(name, model, removed, cfg: Config) -> list[dict]:
    seeds, n, steps = cfg.sizes(name)
    safe = safe_model(model, removed)
    rows = []
    # the floor: exact draws of the safe distribution (overlapping classes keep some mass on c)
    per_seed = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 * seed + 7)
        per_seed.append(
            metrics(model, safe, removed, safe.sample(n, T_END, rng=rng).x, safe.sample(n, T_END, rng=rng).x, rng)
        )
    rows.append(_aggregate(name, "exact safe draws", 0.0, seeds, n, 0, per_seed, 0.0))
    for label, scale, guided in methods(model, removed, cfg):
        t0 = time.time()
        per_seed = []
        for seed in range(seeds):
            rng = np.random.default_rng(1000 * seed + 7)
            if hasattr(guided, "reset"):
                guided.reset()
            out = DDPMAncestral(steps, spacing="edm").sample(guided, n=n, t_start=10.0, t_end=T_END, rng=rng)
            ref = safe.sample(n, T_END, rng=rng).x
            per_seed.append(metrics(model, safe, removed, out.x, ref, rng))
        row = _aggregate(name, label, scale, seeds, n, steps, per_seed, time.time() - t0)
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


def plot(rows: list[dict], out: Path) -> None:
    plt = _plt()
    names = list(dict.fromkeys(r["problem"] for r in rows))
    keys = [
        ("removed_mass", "mean p(removed | x) of the samples"),
        ("balance_kl", "KL of kept-class balance"),
        ("sw1_to_safe", "SW1 to exact safe draws"),
    ]
    fig, axes = plt.subplots(len(names), 3, figsize=(13, 3.3 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        sel = [r for r in rows if r["problem"] == name]
        for j, (k, title) in enumerate(keys):
            ax = axes[i, j]
            for meth, color in (("NP", "C0"), ("SLD", "C1")):
                pts = [r for r in sel if r["method"] == meth]
                ax.errorbar(
                    [r["scale"] for r in pts],
                    [r[k] for r in pts],
                    [2 * r[k + "_se"] for r in pts],
                    fmt="-o",
                    ms=3,
                    color=color,
                    label=f"{meth} (constant scale)",
                )
            for meth, color, ls in (
                ("DNG exact", "k", "-"),
                ("DNG online (Bayes)", "C2", "--"),
                ("DNG online (reference)", "C3", ":"),
                ("none", "grey", "-."),
                ("exact safe draws", "m", (0, (1, 3))),
            ):
                r = next(r for r in sel if r["method"] == meth)
                ax.axhline(r[k], color=color, ls=ls, lw=1.2, label=meth)
            ax.set_xscale("log")
            ax.set_xlabel("guidance scale w")
            ax.set_title(f"{name}: {title}", fontsize=9)
            if k == "removed_mass":
                ax.set_yscale("symlog", linthresh=1e-4)
                ax.set_ylim(bottom=0)
            elif k == "sw1_to_safe":
                ax.set_yscale("log")
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    _driver.save_figure(fig, out / "negative_guidance.png", dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: checks the pipeline, not the science")
    p.add_argument("--part", default="all", choices=["all", "1d", "2d", "cifar"])
    p.add_argument("--out", default=str(FIGURES))
    p.add_argument("--replot", action="store_true", help="redraw the figure from negative_guidance.csv only")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        import csv

        rows = [
            {k: (v if k in ("problem", "method") else float(v)) for k, v in r.items()}
            for r in csv.DictReader(open(out / "negative_guidance.csv"))
        ]
        plot(rows, out)
        return rows
    cfg = QUICK if args.quick else FULL
    timer = ex.Timer()
    rows: list[dict] = []
    for name, (model, removed) in problems(cfg).items():
        if args.part not in ("all", name):
            continue
        rows += run_problem(name, model, removed, cfg)
    if rows:
        write_rows_csv(out / f"negative_guidance{'' if args.part == 'all' else '_' + args.part}.csv", rows)
        plot(rows, out)
    summary = {"quick": args.quick, "rows": len(rows)}  # the config is in the provenance block only
    summary["provenance"] = ex.provenance(dict(dataclasses.asdict(cfg), part=args.part), None, timer.seconds)
    (out / f"negative_guidance_{args.part}.json").write_text(json.dumps(summary, indent=2))
    return rows


if __name__ == "__main__":
    main()
