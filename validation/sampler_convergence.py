"""Samplers with exact scores: sample error against exact draws versus step count.

Model: a 2-D three-component Gaussian mixture with full covariances under the
OU schedule, sampled from t = 7 down to 0. Error: sliced 1-Wasserstein
distance (128 projections) between 4,000 samples and 4,000 exact draws, mean
and standard error over seeds. The noise floor is the same distance between
two independent sets of exact draws. Writes figures/sampler_convergence.csv
and figures/sampler_convergence.png.

Usage: python validation/sampler_convergence.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion._io import write_rows_csv
from statphys_diffusion.metrics import sliced_wasserstein
from statphys_diffusion.samplers import DDIM, DDPMAncestral, EulerMaruyama, Heun

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402
import _experiment as ex  # noqa: E402

FIGURES = _driver.FIGURES


def model_2d() -> sd.GaussianMixture:
    means = [[-2.0, 0.0], [1.5, 1.0], [0.5, -2.0]]
    covs = [[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]], [[0.25, 0.0], [0.0, 0.25]]]
    return sd.GaussianMixture.full(means, covs, [0.3, 0.5, 0.2])


@dataclass(frozen=True)
class Config:
    """One mode's sizes (issue 34's experiment shape); FULL made the committed outputs."""

    mode: str
    steps: tuple  # sampler step counts
    seeds: int  # seeds 0..seeds-1, each a fresh set of samples and exact draws
    n: int  # samples per seed


FULL = Config("full", (5, 10, 20, 50, 100, 200, 500), 10, 4000)
QUICK = Config("quick", (5, 20), 2, 500)


def run(cfg: Config, out_dir: Path) -> list[dict]:
    """Error against exact draws for each sampler, time grid and step count of ``cfg``; writes CSV, JSON, PNG."""
    timer = ex.Timer()
    steps, seeds, n = cfg.steps, list(range(cfg.seeds)), cfg.n
    model = model_2d()
    rows = []
    # noise floor: exact draws against exact draws, over 4x as many pairs as seeds (it is noisy)
    floor = [
        sliced_wasserstein(
            model.sample(n, 0.0, rng=np.random.default_rng(5000 + j)).x,
            model.sample(n, 0.0, rng=np.random.default_rng(6000 + j)).x,
            rng=0,
        )
        for j in range(4 * len(seeds))
    ]
    floor_mean = float(np.mean(floor))
    floor_se = float(np.std(floor, ddof=1) / np.sqrt(len(floor)))
    for sampler_cls in (EulerMaruyama, Heun, DDPMAncestral, DDIM):
        for spacing in ("uniform", "edm"):
            for k in steps:
                errs = []
                for s in seeds:
                    ref = model.sample(n, 0.0, rng=np.random.default_rng(1000 + s)).x
                    out = sampler_cls(k, spacing=spacing).sample(model, n=n, t_start=7.0, rng=np.random.default_rng(s))
                    errs.append(sliced_wasserstein(out.x, ref, rng=0))
                rows.append(
                    {
                        "sampler": sampler_cls.__name__,
                        "spacing": spacing,
                        "n_steps": k,
                        "sw1_mean": float(np.mean(errs)),
                        "sw1_se": float(np.std(errs, ddof=1) / np.sqrt(len(errs))) if len(errs) > 1 else 0.0,
                        "noise_floor": floor_mean,
                        "noise_floor_se": floor_se,
                        "n_seeds": len(seeds),
                        "n_samples": n,
                    }
                )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rows_csv(out_dir / "sampler_convergence.csv", rows)
    meta = {"steps": list(steps), "seeds": list(seeds), "n": n, "t_start": 7.0}
    meta["provenance"] = ex.provenance(cfg, None, timer.seconds)
    (out_dir / "sampler_convergence.json").write_text(json.dumps(meta, indent=2))
    plot(rows, out_dir / "sampler_convergence.png")
    return rows


def plot(rows, path):
    """Two panels (uniform and EDM time grids): error versus steps per sampler; returns the Axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for a, spacing in zip(axes, ("uniform", "edm")):
        for i, name in enumerate(("EulerMaruyama", "Heun", "DDPMAncestral", "DDIM")):
            sel = [r for r in rows if r["sampler"] == name and r["spacing"] == spacing]
            a.errorbar(
                [r["n_steps"] for r in sel],
                [r["sw1_mean"] for r in sel],
                yerr=[r["sw1_se"] for r in sel],
                marker="o",
                ms=3,
                color=f"C{i}",
                label=name,
            )
        f, fse = rows[0]["noise_floor"], rows[0]["noise_floor_se"]
        a.axhspan(f - 2 * fse, f + 2 * fse, color="gray", alpha=0.3, lw=0, label="exact vs exact (+-2 se)")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("number of steps")
        a.set_title(f"time grid: {spacing}")
    axes[0].set_ylabel("sliced W1 to exact draws")
    axes[0].legend(fontsize=7)
    _driver.save_figure(fig, path, "Exact-score samplers on a 2-D Gaussian mixture (OU, t = 7 -> 0)", dpi=120)
    return axes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two step counts, two seeds, 500 samples")
    p.add_argument("--out", default=str(FIGURES))
    args = p.parse_args(argv)
    rows = run(QUICK if args.quick else FULL, Path(args.out))
    for r in rows:
        print(f"{r['sampler']:>14} {r['spacing']:>8} {r['n_steps']:>4}  SW1 = {r['sw1_mean']:.4f} +- {r['sw1_se']:.4f}")
    print(f"noise floor {rows[0]['noise_floor']:.4f} +- {rows[0]['noise_floor_se']:.4f}")
    return rows


if __name__ == "__main__":
    main()
