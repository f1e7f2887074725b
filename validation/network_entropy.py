"""Result 1 on a trained network: per-class H(Y | X_t) and entropy-rate peaks against the exact model.

The class-conditional network of validation/_networks.py (CIFAR-10 at 16 x 16, DDPM
linear schedule; times below are in its units, the step index 0..1000) against the
exact labelled empirical model of the same 50,000 training images in the same schedule:

* exact: sd.entropy_rate (Monte Carlo over draws of the exact model), H(Y | X_t), its
  rate dH/dt and per-class rates conditioned on the generated class, with peak times;
* network, online classifier: DDPM ancestral chains of the unconditional network,
  p(c | chain) tracked by Bayes' rule with the conditional denoisers (DESIGN.md); per
  generated class (the final argmax) the mean entropy profile, its rate by finite
  differences in log t on a coarser grid, and the peak time with a bootstrap
  standard error over chains;
* network, I-MMSE: I(Y; X_t) from the conditional and unconditional denoisers on
  held-out test images, H(Y | X_t) = log 10 - I.

Writes figures/network_entropy.{csv,png,json} (and *_peaks.csv). Usage:
    python validation/network_entropy.py [--quick] [--runs runs]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _networks  # noqa: E402

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion._io import write_rows_csv  # noqa: E402


def _peak(times: np.ndarray, h: np.ndarray, coarse: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Rate dH/dt on every ``coarse``-th point of an increasing grid and the time of its maximum."""
    tt, hh = times[::coarse], h[::coarse]
    rate = np.gradient(hh, tt)
    i = int(np.argmax(rate))
    t_peak = float(tt[i])
    if 0 < i < tt.size - 1:  # parabola in log t through the maximum and its neighbours
        x, y = np.log(tt[i - 1 : i + 2]), rate[i - 1 : i + 2]
        den = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
        a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / den
        b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / den
        if a < 0:
            t_peak = float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))
    return tt, rate, t_peak


def main(argv=None):
    args = _networks.parser(__doc__, "the quick network and few draws: the pipeline only").parse_args(argv)
    import torch

    from statphys_diffusion import datasets

    torch.set_num_threads(2)
    cfg, out = _networks.setup(args)
    n_chains = 40 if args.quick else 500
    chain_steps = 20 if args.quick else 200
    n_exact = 200 if args.quick else 3000
    n_immse = 40 if args.quick else 500
    t0 = time.time()
    model, meta = _networks.conditional_network(cfg)
    names = meta["class_names"]
    sch = model.schedule
    train = _networks.training_set(cfg)
    exact = sd.EmpiricalDistribution(
        _networks.flat_points(train.images),
        labels=train.labels,
        schedule=sch,
    )
    ts = np.geomspace(5.0, 950.0, 12 if args.quick else 40)
    est = sd.entropy_rate(exact, ts, n=n_exact, rng=np.random.default_rng(0), progress=not args.quick)
    t_exact = time.time() - t0
    # network: online classifier along DDPM chains (unconditional network, all ten conditionals)
    classes = np.arange(len(names))
    track = sd.OnlineClassifier(chain_steps, progress=not args.quick).run(
        model, n=n_chains, classes=classes, rng=np.random.default_rng(1)
    )
    order = np.argsort(track.times)
    times = track.times[order]
    ent = track.entropy()[order]  # (S + 1, M), increasing t
    gen = track.log_posterior[-1].argmax(axis=1)  # generated class: the final tracked posterior
    keep = times > sch.t_min
    times, ent = times[keep], ent[keep]
    coarse = 1 if args.quick else 5
    rng = np.random.default_rng(2)
    peaks = []
    for c, name in enumerate(names):
        sel = np.flatnonzero(gen == c)
        row = {
            "class": c,
            "class_name": name,
            "exact_generated_peak_t": est.generated_peak_time[c],
            "exact_generated_peak_t_se": est.generated_peak_time_stderr[c],
            "exact_true_class_peak_t": est.peak_time[c],
            "exact_true_class_peak_t_se": est.peak_time_stderr[c],
            "network_chains": int(sel.size),
        }
        if sel.size >= 5:
            _, _, tp = _peak(times, ent[:, sel].mean(axis=1), coarse)
            boots = [_peak(times, ent[:, rng.choice(sel, sel.size)].mean(axis=1), coarse)[2] for _ in range(200)]
            row.update(network_online_peak_t=tp, network_online_peak_t_se=float(np.std(boots, ddof=1)))
        else:
            row.update(network_online_peak_t=float("nan"), network_online_peak_t_se=float("nan"))
        peaks.append(row)
    t_online = time.time() - t0 - t_exact
    # network: I-MMSE on held-out images
    test = datasets.load_cifar10(cfg["data"], "test", size=cfg["size"], progress=False)
    pick = np.random.default_rng(3).choice(len(test.images), n_immse, replace=False)
    x0 = _networks.flat_points(test.images[pick])
    im = sd.mutual_information_immse(model, ts, data=(x0, test.labels[pick]), rng=np.random.default_rng(4))
    h_y = float(np.log(len(names)))
    online_mean = ent.mean(axis=1)
    rows = []
    for i, t in enumerate(ts):
        j = int(np.argmin(np.abs(np.log(times / t))))
        rows.append(
            {
                "t": t,
                "H_exact": est.entropy[i],
                "H_exact_se": est.entropy_stderr[i],
                "rate_exact": est.rate[i],
                "H_network_immse": h_y - im.value[i],
                "H_network_immse_se": im.stderr[i],
                "H_network_online": online_mean[j],
                "H_network_online_se": float(ent[j].std(ddof=1) / np.sqrt(ent.shape[1])),
                "t_online": times[j],
            }
        )
    tag = "_quick" if args.quick else ""
    write_rows_csv(out / f"network_entropy{tag}.csv", rows)
    write_rows_csv(out / f"network_entropy{tag}_peaks.csv", peaks)
    diffs = [
        r["network_online_peak_t"] - r["exact_generated_peak_t"]
        for r in peaks
        if np.isfinite(r["network_online_peak_t"])
    ]
    summary = {
        "quick": args.quick,
        "n_exact_draws": n_exact,
        "n_chains": n_chains,
        "chain_steps": chain_steps,
        "n_immse": n_immse,
        "exact_total_peak_t": float(ts[np.argmax(est.rate)]),
        "median_peak_shift_network_minus_exact": float(np.median(diffs)) if diffs else float("nan"),
        "seconds_exact": t_exact,
        "seconds_online": t_online,
        "seconds": time.time() - t0,
        "version": sd.__version__,
    }
    (out / f"network_entropy{tag}.json").write_text(json.dumps(summary, indent=2, default=float))
    _plot(rows, peaks, times, ent, gen, coarse, out / f"network_entropy{tag}.png")
    print(json.dumps(summary, indent=2, default=float))
    return rows, peaks, summary


def _plot(rows, peaks, times, ent, gen, coarse, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    ax = axes[0]
    ts = [r["t"] for r in rows]
    ax.errorbar(
        ts, [r["H_exact"] for r in rows], [2 * r["H_exact_se"] for r in rows], fmt="k-", label="exact empirical"
    )
    ax.errorbar(
        ts,
        [r["H_network_immse"] for r in rows],
        [2 * r["H_network_immse_se"] for r in rows],
        fmt="s",
        ms=3,
        label="network, I-MMSE (test images)",
    )
    ax.plot(times, ent.mean(axis=1), "C2", label="network, online classifier")
    ax.set_xscale("log")
    ax.set_xlabel("t (DDPM step)")
    ax.set_ylabel("H(Y | X_t) [nats]")
    ax.set_title("Class entropy (bars 2 s.e.)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    for c, pk in enumerate(peaks):
        sel = np.flatnonzero(gen == c)
        if sel.size >= 5:
            tt, rate, _ = _peak(times, ent[:, sel].mean(axis=1), coarse)
            ax.plot(tt, rate, color=f"C{c}", lw=1, label=pk["class_name"])
    ax.set_xscale("log")
    ax.set_xlabel("t (DDPM step)")
    ax.set_ylabel("dH/dt per generated class (network, online)")
    ax.set_title("Entropy rate of the network's chains", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    ax = axes[2]
    y = np.arange(len(peaks))
    ax.errorbar(
        [p["exact_generated_peak_t"] for p in peaks],
        y,
        xerr=[p["exact_generated_peak_t_se"] for p in peaks],
        fmt="ko",
        label="exact empirical (generated class)",
    )
    ax.errorbar(
        [p["network_online_peak_t"] for p in peaks],
        y + 0.2,
        xerr=[p["network_online_peak_t_se"] for p in peaks],
        fmt="C2s",
        label="network (online classifier)",
    )
    ax.set_yticks(y, [p["class_name"] for p in peaks], fontsize=7)
    ax.set_xlabel("peak time of dH/dt (DDPM step)")
    ax.set_title("Per-class peak times (bars 1 s.e.)", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(
        "Semantic information production: class-conditional DDPM on CIFAR-10 16 x 16 vs the exact empirical "
        "model of its training set",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
