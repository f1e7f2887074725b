"""Result 1: semantic decisions as information transfer, H(Y | X_t) and its rate.

Parts (all by default; choose with --part):

toy         1-D Gaussian mixtures under OU: two components at +-s/2 and three at
            -s, 0, s (component variance 0.1) for several separations s,
            H(Y | X_t) and dH/dt by quadrature (error < 1e-8), per-class rates
            and their peak times.
estimators  one 1-D three-class mixture: H(Y | X_t) from four independent
            routes, quadrature, Monte Carlo with common random numbers, the
            I-MMSE integral of denoiser differences, and the mean entropy of the
            online Bayes classifier along DDPM ancestral chains; the rate by
            quadrature and by the Monte Carlo pathwise derivative.
cifar       the exact labelled empirical model of the 50,000 CIFAR-10 training
            images (d = 3,072, OU schedule): per-class entropy-rate profiles,
            conditioned on the true and on the generated class, their peak times
            in OU time and as DDPM linear-schedule steps (``cifar_plot`` redraws
            the figure from the committed CSV without recomputing).

Writes CSV and PNG files into figures/. Usage:
    python validation/semantic_information.py [--quick] [--part toy|estimators|cifar|all]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion._io import write_rows_csv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _driver  # noqa: E402

VAR = 0.1


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def two_component(s: float) -> sd.GaussianMixture:
    return sd.GaussianMixture.isotropic([[-s / 2], [s / 2]], VAR, labels=[0, 1])


def three_component(s: float) -> sd.GaussianMixture:
    return sd.GaussianMixture.isotropic([[-s], [0.0], [s]], VAR, labels=[0, 1, 2])


@dataclass(frozen=True)
class Config:
    """One mode's sizes: FULL made the committed outputs, QUICK checks the pipeline."""

    mode: str
    toy_times: int  # grid of the toy entropy rates
    estimator_times: int
    n_monte_carlo: int
    n_immse: int
    chain_steps: int  # the online classifier's DDPM chain
    n_chains: int
    cifar_max_per_class: int | None  # None: all 50,000 images
    cifar_times: int
    n_cifar: int


FULL = Config("full", 120, 25, 20000, 4000, 2000, 3000, None, 60, 5000)
QUICK = Config("quick", 30, 12, 2000, 500, 200, 300, 100, 24, 500)


# --------------------------------------------------------------------------- toy
def part_toy(out: Path, cfg: Config) -> dict:
    plt = _plt()
    ts = np.geomspace(1e-3, 5.0, cfg.toy_times)
    seps = (1.0, 2.0, 4.0, 8.0)
    rows, peaks = [], []
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for row, (name, build) in enumerate((("two", two_component), ("three", three_component))):
        for j, s in enumerate(seps):
            est = sd.entropy_rate(build(s), ts, n=200, rng=np.random.default_rng(0))
            color = f"C{j}"
            axes[row, 0].plot(ts, est.entropy, color=color, label=f"s = {s}")
            if name == "two":  # the result's own plot (rate with its 1 s.e. band), one per separation
                est.plot(axes[row, 1], classes=False, color=color, label=f"s = {s}")
                axes[row, 1].axvline(est.peak_time[0], color=color, lw=0.6, ls=":")
            else:
                axes[row, 1].plot(ts, est.class_rate[0], color=color, label=f"s = {s}, outer classes")
                axes[row, 1].plot(ts, est.class_rate[1], color=color, ls="--", label=f"s = {s}, middle class")
            for c, lab in enumerate(est.classes):
                peaks.append(
                    {
                        "mixture": name,
                        "separation": s,
                        "class": int(lab),
                        "peak_t": est.peak_time[c],
                        "peak_rate": float(np.max(est.class_rate[c])),
                    }
                )
            for i, t in enumerate(ts):
                rows.append(
                    {
                        "mixture": name,
                        "separation": s,
                        "t": t,
                        "entropy": est.entropy[i],
                        "rate": est.rate[i],
                        **{f"rate_class_{int(c)}": est.class_rate[k, i] for k, c in enumerate(est.classes)},
                    }
                )
    for row, name in enumerate(("two components at +-s/2", "three components at -s, 0, s")):
        axes[row, 0].set_ylabel("H(Y | X_t)  [nats]")
        axes[row, 1].set_ylabel("dH/dt  [nats / OU time]")
        axes[row, 0].set_title(f"{name}: conditional entropy")
        axes[row, 1].set_title(f"{name}: entropy rate" + (" (dotted: peak)" if row == 0 else " per class"))
        for ax in axes[row]:
            ax.set_xscale("log")
            ax.set_xlabel("OU time t")
            ax.legend(fontsize=6)
    _driver.save_figure(
        fig, out / "semantic_toy.png", f"1-D Gaussian mixtures (component variance {VAR}), exact quadrature", dpi=120
    )
    write_rows_csv(out / "semantic_toy.csv", rows)
    write_rows_csv(out / "semantic_toy_peaks.csv", peaks)
    return {"peaks": peaks}


# -------------------------------------------------------------------- estimators
def part_estimators(out: Path, cfg: Config) -> dict:
    plt = _plt()
    model = three_component(2.0)
    h_y = float(np.log(3))
    ts = np.geomspace(0.01, 3.0, cfg.estimator_times)
    n_mc = cfg.n_monte_carlo
    quad = sd.entropy_rate(model, ts, n=200, rng=np.random.default_rng(0))
    mc = sd.entropy_rate(model, ts, n=n_mc, method="monte_carlo", rng=np.random.default_rng(1))
    im = sd.mutual_information_immse(model, ts, n=cfg.n_immse, rng=np.random.default_rng(2))
    # online classifier: DDPM ancestral chains from t = 6 down to the smallest grid time, posterior
    # read off at the grid times (nearest chain times: the chain grid is fine enough that this is exact
    # to the number of digits shown)
    steps = cfg.chain_steps
    chain_times = np.geomspace(6.0, ts[0], steps + 1)
    n_chain = cfg.n_chains
    track = sd.OnlineClassifier(times=chain_times).run(model, n=n_chain, rng=np.random.default_rng(3))
    ent = track.entropy()
    idx = [int(np.argmin(np.abs(np.log(chain_times / t)))) for t in ts]
    online = ent[idx].mean(axis=1)
    online_se = ent[idx].std(axis=1, ddof=1) / np.sqrt(n_chain)
    rows = []
    for i, t in enumerate(ts):
        rows.append(
            {
                "t": t,
                "H_quadrature": quad.entropy[i],
                "H_monte_carlo": mc.entropy[i],
                "H_monte_carlo_se": mc.entropy_stderr[i],
                "H_immse": h_y - im.value[i],
                "H_immse_se": im.stderr[i],
                "H_online": online[i],
                "H_online_se": online_se[i],
                "rate_quadrature": quad.rate[i],
                "rate_monte_carlo": mc.rate[i],
                "rate_monte_carlo_se": mc.rate_stderr[i],
            }
        )
    write_rows_csv(out / "semantic_estimators.csv", rows)
    z = {
        "monte_carlo": float(np.max(np.abs(mc.entropy - quad.entropy) / mc.entropy_stderr)),
        "immse": float(np.max(np.abs(h_y - im.value - quad.entropy) / im.stderr)),
        "online": float(np.max(np.abs(online - quad.entropy) / online_se)),
        "rate_monte_carlo": float(np.max(np.abs(mc.rate - quad.rate) / mc.rate_stderr)),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    ax.plot(ts, quad.entropy, "k-", label="quadrature")
    ax.errorbar(ts, mc.entropy, 2 * mc.entropy_stderr, fmt="o", ms=3, label=f"Monte Carlo (n={n_mc})")
    ax.errorbar(ts, h_y - im.value, 2 * im.stderr, fmt="s", ms=3, label="I-MMSE (denoisers only)")
    ax.errorbar(ts, online, 2 * online_se, fmt="^", ms=3, label=f"online classifier ({steps} DDPM steps)")
    ax.set_ylabel("H(Y | X_t)  [nats]")
    ax.set_title("Four estimators of H(Y | X_t) (bars: 2 s.e.)")
    ax = axes[1]
    ax.plot(ts, quad.rate, "k-", label="quadrature of the exact derivative")
    ax.errorbar(ts, mc.rate, 2 * mc.rate_stderr, fmt="o", ms=3, label="Monte Carlo pathwise derivative")
    ax.set_ylabel("dH/dt  [nats / OU time]")
    ax.set_title("Entropy rate")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("OU time t")
        ax.legend(fontsize=7)
    _driver.save_figure(fig, out / "semantic_estimators.png", "Three classes at -2, 0, 2 (variance 0.1), OU", dpi=120)
    return {"max_abs_z": z}


# --------------------------------------------------------------------------- cifar
def part_cifar(out: Path, cfg: Config) -> dict:
    from statphys_diffusion import datasets

    path = datasets.find_cifar10()
    if path is None:
        print("CIFAR-10 not found: part 'cifar' skipped")
        return {"skipped": "CIFAR-10 not found"}
    ou, lin = sd.OrnsteinUhlenbeck(), sd.DiscreteSchedule.linear(1000)
    ds = datasets.load_cifar10_zip(path, "train", progress=False, max_per_class=cfg.cifar_max_per_class)
    model = sd.EmpiricalDistribution(ds.as_points(order="hwc"), labels=ds.labels, schedule=ou)
    ts = np.geomspace(0.2, 6.0, cfg.cifar_times)
    n = cfg.n_cifar
    t0 = time.time()
    est = sd.entropy_rate(model, ts, n=n, rng=np.random.default_rng(0), progress=True)
    seconds = time.time() - t0
    names = ds.class_names
    rows = [dict(r, class_name=names[r["class"]] if r["class"] != "all" else "all") for r in est.to_rows()]
    write_rows_csv(out / "semantic_cifar.csv", rows)

    def step(t):
        return int(sd.time_to_ddpm_index(t, ou, lin)) if np.isfinite(t) else ""

    peaks = []
    for c, lab in enumerate(est.classes):
        peaks.append(
            {
                "class": int(lab),
                "class_name": names[int(lab)],
                "draws": int(est.class_counts[c]),
                "peak_t": est.peak_time[c],
                "peak_t_se": est.peak_time_stderr[c],
                "peak_ddpm_step": step(est.peak_time[c]),
                "peak_rate": float(np.max(est.class_rate[c])),
                "generated_draws": int(est.generated_counts[c]),
                "generated_peak_t": est.generated_peak_time[c],
                "generated_peak_t_se": est.generated_peak_time_stderr[c],
            }
        )
    total_peak = float(ts[np.argmax(est.rate)])
    write_rows_csv(out / "semantic_cifar_peaks.csv", peaks)
    _plot_cifar(out, model.n_points, model.dim, n)
    return {"seconds": seconds, "n_draws": n, "n_points": model.n_points, "peaks": peaks, "total_peak_t": total_peak}


def _plot_cifar(out: Path, n_points: int, dim: int, n: int) -> None:
    """Per-class entropy and rate profiles from semantic_cifar.csv (rerun with --part cifar_plot)."""
    import csv

    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    plt = _plt()
    rows = list(csv.DictReader(open(out / "semantic_cifar.csv")))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["class_name"] for r in rows if r["class"] != "all"]
    names = list(dict.fromkeys(names))
    for c, name in enumerate(names + ["all"]):
        sel = [r for r in rows if r["class_name"] == name]
        t = np.array([float(r["t"]) for r in sel])
        h = np.array([float(r["entropy"]) for r in sel])
        rate = np.array([float(r["rate"]) for r in sel])
        se = np.array([float(r["rate_stderr"]) for r in sel])
        if name == "all":
            axes[0].plot(t, h, "k--", label="all classes")
            continue
        tp = t[np.argmax(rate)]
        axes[1].plot(t, rate, color=f"C{c}", label=f"{name} (grid max at t={tp:.2f})")
        axes[1].fill_between(t, rate - 2 * se, rate + 2 * se, color=f"C{c}", alpha=0.2)
        axes[0].plot(t, h, color=f"C{c}", label=name)
    axes[0].axhline(np.log(10), color="grey", lw=0.6)
    axes[0].set_ylabel("E[h(X_t) | y_0 = c]  [nats]")
    axes[0].set_title("Class entropy given the true class")
    axes[1].set_ylabel("dH/dt  [nats / OU time]")
    axes[1].set_title("Per-class entropy rate (bands: 2 s.e.)")
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([0.2, 0.5, 1, 2, 5]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("OU time t")
        ax.legend(fontsize=6)
    _driver.save_figure(
        fig,
        out / "semantic_cifar.png",
        f"Exact empirical CIFAR-10 model (N={n_points}, d={dim}), {n} Monte Carlo draws",
        dpi=120,
    )


def main(argv=None):
    parts = {"toy": part_toy, "estimators": part_estimators, "cifar": part_cifar}
    args = _driver.parts_parser(__doc__, parts, extra_parts=["cifar_plot"]).parse_args(argv)
    if args.part == "cifar_plot":  # redraw the committed CIFAR figure from its CSV, no recomputation
        _plot_cifar(Path(args.out), 50000, 3072, 5000)
        return {"quick": args.quick, "version": sd.__version__}
    return _driver.run_parts("semantic_information", parts, args, full=FULL, quick=QUICK)


if __name__ == "__main__":
    main()
