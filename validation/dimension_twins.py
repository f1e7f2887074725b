"""Result 4 redone, phase 1 (issue 34): does the parameterisation gap of the N = 32 twins close with training?

Pre-registration: ``validation/preregistrations/dimension_twins.md`` (draft until its reference check is
committed). The committed R4 row (``network_dimension.py``) could not trust any time: at N = 32 the
EDM, eps and x0 twins (8,000 steps each) gave median dimensions at training points of 322 / 288 / 0 at
t = 2 and 23 / 16 / 0 at t = 20. Here each twin is warm-restarted from its committed weights to 2x
and 4x its budget (16,000 and 32,000 steps; fresh Adam state, generator seed 1, as the R1 warm
restart), and at every budget the same estimator (``sd.manifold_dimension``, all 768 antithetic probes,
level rule 1/2) is read at 8 training points and t = 2, 5, 10, 20, beside each twin's denoising error
on its training images there. The exact empirical model of the 32 images (what any parameterisation
converges to) is measured the same way as the reference.

Modes: ``--reference-check`` (the exact model through the same measurement; no training), the full run
(refuses while the pre-registration is a draft), ``--quick`` (tiny twins at 8 x 8, the pipeline).

Usage: python validation/dimension_twins.py --reference-check
       python validation/dimension_twins.py [--quick] [--progress]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
import _networks  # noqa: E402
from _driver import save_figure  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "dimension_twins"
JOBS = ex.ROOT / "validation" / "jobs" / NAME
TWINS = ("edm", "eps", "x0")
CONTINUE_SEED = 1  # the warm restarts' generator (not the first runs' 0: no batch replayed)
LEVEL = 0.5


@dataclass(frozen=True)
class Config:
    mode: str
    n: int  # training images of the twins
    size: int
    budgets: tuple  # total training steps; the first is the committed runs'
    times: tuple
    n_train_points: int
    mse_draws: int  # noise draws per training image for the denoising error
    tol: float  # the committed trust tolerance on the twins' spread


FULL = Config("full", 32, 16, (8000, 16000, 32000), (2.0, 5.0, 10.0, 20.0), 8, 16, 0.10)
QUICK = Config("quick", 4, 8, (30, 60), (5.0, 20.0), 2, 2, 0.10)


def _spec(cfg: Config, twin: str, seed: int = 0) -> dict:
    spec = dict(_networks.MEMORIZATION["train"], prediction=twin, seed=seed)
    if cfg.mode == "quick":
        spec.update(batch_size=16, lr=2e-3)
    return spec


def weights_dir(cfg: Config, runs: Path) -> Path:
    """Where the twins' weights go: ``weights/`` for the full run (committed), the runs folder in quick mode."""
    return _networks.WEIGHTS if cfg.mode == "full" else runs / "weights"


def train_job(job: dict) -> dict:
    """One twin at one budget: the first budget is its committed run (trained only if absent); a later
    budget continues the previous budget's weights for the difference in steps. Exports the weights."""
    import torch

    from statphys_diffusion import datasets
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import cached_run, export_weights, run_name

    torch.set_num_threads(2)
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()})
    t0 = time.time()
    runs, twin, b = Path(job["runs"]), job["twin"], int(job["budget_index"])
    ds = datasets.load_cifar10(job["data"], "train", n=cfg.n, size=cfg.size, seed=0, nested=True, progress=False)
    kw = {"size": cfg.size, "n": cfg.n, "config": _networks.MEMORIZATION["config"], "nested": True}
    if b == 0:
        tc = TrainConfig(steps=cfg.budgets[0], **_spec(cfg, twin))
    else:
        kw["init_weights"] = Path(job["init"])
        tc = TrainConfig(steps=cfg.budgets[b] - cfg.budgets[b - 1], **_spec(cfg, twin, CONTINUE_SEED))
    name = run_name(train_config=tc, **kw)
    out = weights_dir(cfg, runs) / f"{name}.fp16.pt"
    if not out.is_file():
        run = cached_run(runs / NAME, dataset=ds, train_config=tc, progress=job.get("progress", False), **kw)
        out.parent.mkdir(parents=True, exist_ok=True)
        export_weights(run, out)
    return {"twin": twin, "budget": cfg.budgets[b], "weights": out.name, "seconds": time.time() - t0}


def _dimension_rows(model, points, times, seed: int) -> list[dict]:
    rows = []
    for idx, p in points:
        res = sd.manifold_dimension(model, p, np.asarray(times), rule="level", level=LEVEL, rng=seed + idx)
        for i, t in enumerate(res.times):
            sv = res.singular_values[i]
            rows.append(
                {
                    "t": float(t),
                    "index": int(idx),
                    "dim": int(np.sum(sv < LEVEL)),
                    "dim_0.25": int(np.sum(sv < 0.25)),
                    "dim_0.75": int(np.sum(sv < 0.75)),
                }
            )
    return rows


def _denoising_error(model, train: np.ndarray, times, draws: int, rng) -> list[float]:
    """Per t: mean over training images and noise draws of |D(a x0 + s eps, t) - x0|^2 / d."""
    sch = model.schedule
    out = []
    for t in times:
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        x0 = np.repeat(train, draws, axis=0)
        d = np.asarray(model.denoise(a * x0 + s * rng.standard_normal(x0.shape), t), dtype=np.float64)
        out.append(float(np.mean((d - x0) ** 2)))
    return out


def measure(model, train: np.ndarray, cfg: Config) -> dict:
    rng = np.random.default_rng(7)
    pick = rng.choice(train.shape[0], min(cfg.n_train_points, train.shape[0]), replace=False)
    rows = _dimension_rows(model, [(int(i), train[i]) for i in pick], cfg.times, seed=100)
    med = {str(t): float(np.median([r["dim"] for r in rows if r["t"] == t])) for t in cfg.times}
    return {"rows": rows, "median_dim": med, "mse_train": _denoising_error(model, train, cfg.times, cfg.mse_draws, rng)}


def measure_job(job: dict) -> dict:
    import torch

    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import load_weights

    torch.set_num_threads(2)
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()})
    t0 = time.time()
    ds = datasets.load_cifar10(job["data"], "train", n=cfg.n, size=cfg.size, seed=0, nested=True, progress=False)
    model = load_weights(Path(job["weights"]))[0]
    out = measure(model, _networks.flat_points(ds.images), cfg)
    return {"twin": job["twin"], "budget": job["budget"], **out, "seconds": time.time() - t0}


def spread(values) -> float:
    """(max - min) / mean of the twins' medians (0 when they are equal)."""
    v = np.asarray(list(values), dtype=float)
    if v.max() == v.min():
        return 0.0
    return float((v.max() - v.min()) / max(v.mean(), 1e-300))


def decide(medians: dict, cfg: Config) -> tuple[str, str, dict]:
    """The pre-registered call on ``medians[budget][twin][t]``: closes / narrows / does not close."""
    spreads = {b: {t: spread(medians[b][tw][str(t)] for tw in TWINS) for t in cfg.times} for b in cfg.budgets}
    first, last = cfg.budgets[0], cfg.budgets[-1]
    trusted = {b: [t for t in cfg.times if spreads[b][t] <= cfg.tol] for b in cfg.budgets}
    closing = [b for b in cfg.budgets if trusted[b]]
    if closing:
        b = closing[0]
        return "closes", f"twins within {cfg.tol:.0%} at budget {b} for t in {trusted[b]}", spreads
    if all(spreads[last][t] < spreads[first][t] for t in cfg.times):
        return (
            "narrows",
            f"the spread falls from budget {first} to {last} at every t but stays above {cfg.tol:.0%}",
            spreads,
        )
    return "does not close", f"the spread does not fall at every t from budget {first} to {last}", spreads


def reference_check(data, out: Path) -> dict:
    """The exact empirical model of the twins' training images through the same measurement."""
    from statphys_diffusion import datasets

    cfg = FULL
    ds = datasets.load_cifar10(data, "train", n=cfg.n, size=cfg.size, seed=0, nested=True, progress=False)
    train = _networks.flat_points(ds.images)
    exact = sd.EmpiricalDistribution(train, schedule=sd.DiscreteSchedule.linear(1000))
    res = measure(exact, train, cfg)
    # the gate's rule on three identical twins (what full convergence gives whatever the parameterisation)
    same = {b: {tw: res["median_dim"] for tw in TWINS} for b in cfg.budgets}
    call, reason, _ = decide(same, cfg)
    report = {
        "exact_empirical": {k: v for k, v in res.items() if k != "rows"},
        "rule_on_identical_twins": [call, reason],
        "committed_8000_step_medians": {
            "edm": [322.0, 106.0, 42.5, 23.0],
            "eps": [288.0, 75.0, 26.5, 16.0],
            "x0": [0.0, 0.0, 0.0, 0.0],
            "t": list(cfg.times),
            "source": "figures/network_dimension.json (4 training points)",
        },
    }
    ex.write_json(out, report)
    print(report)
    return report


def run(cfg: Config, data, runs: Path, cache, out: Path, progress: bool) -> dict:
    from statphys_diffusion import datasets

    _, digest = ex.preregistration(NAME, require_committed=cfg.mode != "quick")
    if cfg.mode != "quick" and "Status: draft" in (ex.PREREGISTRATIONS / f"{NAME}.md").read_text():
        raise SystemExit(f"{NAME}.md is still a draft: register it (after its reference check) before training")
    timer = ex.Timer()
    data = str(data or datasets.find_cifar10())
    weights: dict = {}
    for b in range(len(cfg.budgets)):  # budget by budget: each continues the previous one's weights
        jobs = [
            {
                "config": dataclasses.asdict(cfg),
                "runs": str(runs),
                "data": data,
                "twin": tw,
                "budget_index": b,
                "init": None if b == 0 else str(weights_dir(cfg, runs) / weights[tw, cfg.budgets[b - 1]]),
                "progress": progress,
            }
            for tw in TWINS
        ]
        for j, r in zip(
            jobs,
            sd.run_sweep(
                train_job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} training to {cfg.budgets[b]}"
            ),
        ):
            weights[j["twin"], cfg.budgets[b]] = r["weights"]
    mjobs = [
        {
            "config": dataclasses.asdict(cfg),
            "data": data,
            "twin": tw,
            "budget": b,
            "weights": str(weights_dir(cfg, runs) / weights[tw, b]),
        }
        for b in cfg.budgets
        for tw in TWINS
    ]
    got = sd.run_sweep(measure_job, mjobs, cache_dir=cache, progress=progress, desc=f"{NAME} measurement")
    medians = {b: {} for b in cfg.budgets}
    mse = {b: {} for b in cfg.budgets}
    for j, r in zip(mjobs, got):
        medians[j["budget"]][j["twin"]] = r["median_dim"]
        mse[j["budget"]][j["twin"]] = r["mse_train"]
    call, reason, spreads = decide(medians, cfg)
    summary = {
        "criterion": PREDICTION,
        "call": call,
        "reason": reason,
        "times": list(cfg.times),
        "median_dim": {str(b): v for b, v in medians.items()},
        "spread": {str(b): {str(t): s for t, s in v.items()} for b, v in spreads.items()},
        "mse_train": {str(b): v for b, v in mse.items()},
        "weights": {f"{tw}@{b}": w for (tw, b), w in weights.items()},
        "rows": [dict(r, twin=j["twin"], budget=j["budget"]) for j, res in zip(mjobs, got) for r in res["rows"]],
        "provenance": ex.provenance(cfg, digest, timer.seconds),
    }
    tag = "_quick" if cfg.mode == "quick" else ""
    write(summary, out / f"{NAME}{tag}")
    return summary


PREDICTION = (
    "Pre-registered (validation/preregistrations/dimension_twins.md): per budget and t, the spread (max - min) / "
    "mean of the three twins' median dimensions at training points; 'closes' if at some budget some t has spread "
    "<= 10% (the committed trust tolerance; the smallest such budget and its t are phase 2's), 'narrows' if "
    "not but the spread falls from 8,000 to 32,000 steps at every t, 'does not close' otherwise."
)


def write(summary: dict, stem: Path) -> None:
    from statphys_diffusion._io import write_rows_csv

    stem.parent.mkdir(parents=True, exist_ok=True)
    write_rows_csv(stem.with_suffix(".csv"), summary["rows"])
    ex.write_json(stem.with_suffix(".json"), {k: v for k, v in summary.items() if k != "rows"})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ts = summary["times"]
    budgets = list(summary["median_dim"])
    for k, b in enumerate(budgets):
        for tw, colour in zip(TWINS, ("C0", "C1", "C2")):
            rows = [r for r in summary["rows"] if r["twin"] == tw and str(r["budget"]) == b]
            med = [summary["median_dim"][b][tw][str(t)] for t in ts]
            q = [np.percentile([r["dim"] for r in rows if r["t"] == t], [25, 75]) for t in ts]
            style = ("-", "--", ":")[k % 3]
            axes[0].errorbar(
                ts,
                med,
                yerr=np.abs(np.array(q).T - np.array(med)),
                color=colour,
                ls=style,
                marker="o",
                ms=3,
                capsize=2,
                label=f"{tw}, {int(b):,} steps",
            )
            axes[1].plot(ts, summary["mse_train"][b][tw], color=colour, ls=style, marker="o", ms=3)
    for ax in axes:
        ax.set_xscale("log")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("dimension at training points (median, IQR)")
    axes[0].legend(fontsize=6, ncol=2)
    n = summary["provenance"]["config"]["n"]
    axes[0].set_title(f"N = {n} twins (EDM, eps, x0): {summary['call']}", fontsize=9)
    for ax in axes:
        ax.set_xticks(ts, [f"{t:g}" for t in ts])
        ax.minorticks_off()
    axes[1].set_yscale("log")
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("denoising error on training images (per pixel)")
    axes[1].set_title("the same networks' denoising error", fontsize=9)
    save_figure(fig, stem.with_suffix(".png"))


def main(argv=None) -> dict:
    args = ex.parser(__doc__, "tiny twins at 8 x 8: the pipeline only").parse_args(argv)
    if args.reference_check:
        return reference_check(args.data, ex.PREREGISTRATIONS / f"{NAME}_reference_check.json")
    cache, out = ex.destinations(args, JOBS)
    return run(QUICK if args.quick else FULL, args.data, ex.ROOT / args.runs, cache, out, args.progress)


if __name__ == "__main__":
    main()
