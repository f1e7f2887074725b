"""Result 2 completed (issue 34): a second training seed, what the spurious samples are, the threshold table.

Pre-registration: ``validation/preregistrations/spurious_samples.md`` (draft until its reference check
is committed). The networks are Result 2's ``tiny`` UNets (``network_memorization.py``) at N = 23, 32,
45 and 64: training seed 0 (the committed float16 weights) and training seed 1 (trained here, same
configuration). Every network is measured by Result 2's own job; then a probe job per network
regenerates its 2,000 samples (the job's own generator), classifies them at delta_s / delta_m = 2/3
and 1 (the threshold table), and noises its spurious and memorised samples to t = 10, 20, 50 and
returns them with the network's 20-step DDIM: back to itself, to a training image, or elsewhere.

Modes:

* ``--reference-check``: the classification of returns on an exact Gaussian mixture whose answer is
  known (a component at each training image and one at a midpoint of two), and part A's rule on the
  committed seed-0 fractions. Writes ``preregistrations/spurious_samples_reference_check.json``.
* (no flag) the full run: refuses while the pre-registration is a draft or uncommitted; writes
  ``figures/spurious_samples.{json,csv,png}``. ``--quick``: two tiny networks at 8 x 8, the pipeline.

Usage: python validation/spurious_samples.py --reference-check
       python validation/spurious_samples.py [--quick] [--progress]
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
import _networks  # noqa: E402
import network_memorization as nm  # noqa: E402
from _driver import save_figure  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "spurious_samples"
JOBS = ex.ROOT / "validation" / "jobs" / NAME
SEED0_CROSSING = 33.7  # figures/network_memorization.json, memorized_half_crossing_N
OUTCOMES = ("itself", "training image", "elsewhere")


@dataclass(frozen=True)
class Config:
    """One mode's sizes (the pre-registration states the full ones)."""

    mode: str
    ns: tuple
    seeds: tuple  # training seeds: 0 is Result 2's committed networks
    size: int
    steps: int  # training steps per network
    ratios: tuple  # delta_s / delta_m of the threshold table
    times: tuple  # part B's noise levels (DDPM steps)
    gate_t: float  # the memorised control's gate
    decide_t: float  # the time part B's classification is read at
    n_spurious: int  # per network, part B
    n_control: int
    draws: int  # noise draws per sample and time
    return_steps: int  # DDIM steps of a return
    n_resamples: int


FULL = Config("full", (23, 32, 45, 64), (0, 1), 16, 8000, (2 / 3, 1.0), (10.0, 20.0, 50.0), 10.0, 20.0, 64, 16, 4,
              20, 200)  # fmt: skip
QUICK = Config("quick", (4, 8), (0, 1), 8, 30, (2 / 3, 1.0), (10.0, 20.0), 10.0, 20.0, 4, 2, 2, 4, 20)


def _base(cfg: Config, data, runs: Path, seed: int) -> dict:
    """Result 2's job configuration for one training seed (its sizes, thresholds of the committed run)."""
    spec = dict(_networks.MEMORIZATION["train"], seed=int(seed))
    sizes = nm.FULL_SIZES
    if cfg.mode == "quick":
        spec.update(batch_size=nm.QUICK["batch_size"], lr=nm.QUICK["lr"])
        sizes = nm.QUICK_SIZES
    base = {"data": str(data), "size": cfg.size, "spec": spec, "steps": cfg.steps, **dataclasses.asdict(sizes),
            "runs": str(runs / ("memorization-quick" if cfg.mode == "quick" else "memorization")),
            "threads": 2}  # fmt: skip
    return base


def committed_thresholds() -> dict:
    return json.loads((ex.ROOT / "figures" / "network_memorization.json").read_text())["thresholds"]


# -- part B: returns from a noised sample -------------------------------------------------------------


def classify_returns(returns: np.ndarray, starts: np.ndarray, train: np.ndarray, delta: float) -> dict:
    """Each return (M, K, d) of a start (M, d): "itself" (within ``delta`` of its start and farther than
    ``delta`` from every training image), "training image" (within ``delta`` of one), else "elsewhere";
    with the training image's index and whether it is the start's nearest."""
    m, k, d = returns.shape
    flat = returns.reshape(m * k, d)
    nn = sd.nearest_neighbours(flat, train, k=1)
    d_train, j_train = nn.distances[:, 0].reshape(m, k), nn.indices[:, 0].reshape(m, k)
    d_self = np.sqrt(((returns - starts[:, None, :]) ** 2).sum(axis=2))
    nearest_of_start = sd.nearest_neighbours(starts, train, k=1).indices[:, 0]
    to_train = d_train <= delta
    itself = (d_self <= delta) & ~to_train
    label = np.where(to_train, "training image", np.where(itself, "itself", "elsewhere"))
    return {
        "label": label,
        "train_index": np.where(to_train, j_train, -1),
        "to_nearest": to_train & (j_train == nearest_of_start[:, None]),
        "d_self": d_self,
        "d_train": d_train,
    }


def return_census(model, starts: np.ndarray, train: np.ndarray, delta: float, times, draws: int, steps: int,
                  rng) -> list[dict]:  # fmt: skip
    """Part B for one set of starts: per t, the shares of returns in each outcome (and to the nearest image)."""
    from statphys_diffusion.samplers import DDIM

    sch = model.schedule
    out = []
    for t in times:
        if starts.shape[0] == 0:
            out.append({"t": float(t), "n": 0, **{o: float("nan") for o in OUTCOMES}, "nearest": float("nan")})
            continue
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        m, d = starts.shape
        xt = (a * starts[:, None, :] + s * rng.standard_normal((m, draws, d))).reshape(m * draws, d)
        back = DDIM(steps).sample(model, xt, t_start=float(t), t_end=float(sch.t_min), rng=rng).x
        c = classify_returns(np.clip(back, -1, 1).reshape(m, draws, d), starts, train, delta)
        row = {"t": float(t), "n": int(m * draws), **{o: float(np.mean(c["label"] == o)) for o in OUTCOMES}}
        row["nearest"] = float(np.mean(c["to_nearest"]))
        row["per_sample_training_image"] = np.mean(c["label"] == "training image", axis=1).tolist()
        out.append(row)
    return out


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def probe_job(job: dict) -> dict:
    """The threshold table and part B for one network (its 2,000 samples regenerated as Result 2's job
    draws them: ``default_rng(1000 + N)``, the same DDIM)."""
    import torch

    from statphys_diffusion.samplers import DDIM

    t0 = time.time()
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()})
    base = job["base"]
    n = int(job["N"])
    torch.set_num_threads(int(base["threads"]))
    model, ds, name = _networks.memorization_network(
        base["runs"], n, base["steps"], data=base["data"], spec=base["spec"], size=base["size"]
    )
    train = _networks.flat_points(ds.images)
    rng = np.random.default_rng(1000 + n)
    x = np.clip(DDIM(base["sample_steps"]).sample(model, n=base["n_samples"], rng=rng).x, -1, 1)
    delta = float(job["delta"])
    table = []
    labels = None
    for ratio in cfg.ratios:
        c = sd.classify_samples(x, train, delta_m=delta, delta_s=ratio * delta)
        table.append({"ratio": float(ratio), **{f"{k}": c.fractions[k] for k in nm.CATEGORIES},
                      **{f"{k}_lo": c.fractions_low[k] for k in nm.CATEGORIES},
                      **{f"{k}_hi": c.fractions_high[k] for k in nm.CATEGORIES}})  # fmt: skip
        if ratio == 1.0:
            labels = c.labels
    probe = np.random.default_rng(2000 + n)
    spur = x[labels == "spurious"][: cfg.n_spurious]
    memo = x[labels == "memorized"][: cfg.n_control]
    census = {
        "spurious": return_census(model, spur, train, delta, cfg.times, cfg.draws, cfg.return_steps, probe),
        "memorized": return_census(model, memo, train, delta, cfg.times, cfg.draws, cfg.return_steps, probe),
    }
    return {"N": n, "seed": int(base["spec"]["seed"]), "run": name, "n_samples": int(x.shape[0]),
            "threshold_table": table, "returns": census, "seconds": time.time() - t0}  # fmt: skip


# -- part A: the replication rule ----------------------------------------------------------------------


def crossing(ns, memorized) -> float | None:
    """N where the memorised fraction crosses 1/2, linear in log N between the bracketing grid points."""
    ns, f = np.asarray(ns, dtype=float), np.asarray(memorized, dtype=float)
    for i in range(ns.size - 1):
        if (f[i] - 0.5) * (f[i + 1] - 0.5) <= 0 and f[i] != f[i + 1]:
            w = (f[i] - 0.5) / (f[i] - f[i + 1])
            return float(np.exp(np.log(ns[i]) + w * (np.log(ns[i + 1]) - np.log(ns[i]))))
    return None


def replication_rule(fr: dict) -> tuple[str, str]:
    """Part A (pre-registration) on ``fr`` = {"N": [...], "memorized": [...], "spurious": [...], "n": count}."""
    ns = list(fr["N"])
    nc = crossing(ns, fr["memorized"])
    lo, hi = SEED0_CROSSING / np.sqrt(2), SEED0_CROSSING * np.sqrt(2)
    first = nc is not None and lo <= nc <= hi
    sp = np.asarray(fr["spurious"])
    i = int(np.argmax(sp))
    k = int(fr["n"])
    top = _wilson(int(round(sp[i] * k)), k)
    end = _wilson(int(round(sp[ns.index(max(ns))] * k)), k)
    second = ns[i] in (32, 45) and top[0] > end[1]
    where = "none" if nc is None else f"{nc:.1f}"
    reasons = [f"crossing N_c = {where} ({'inside' if first else 'outside'} [{lo:.1f}, {hi:.1f}])",
               f"spurious peak at N = {ns[i]} ({'above' if second else 'not above'} N = {max(ns)})"]  # fmt: skip
    if first and second:
        return "confirmed", "; ".join(reasons)
    if not first and not second:
        return "refuted", "; ".join(reasons)
    return "partly", "; ".join(reasons)


def _redraw(fr: dict, rng) -> dict:
    k = int(fr["n"])
    return dict(
        fr, **{key: (rng.binomial(k, np.clip(fr[key], 0, 1)) / k).tolist() for key in ("memorized", "spurious")}
    )


# -- reference check -----------------------------------------------------------------------------------


def reference_check(data, out: Path) -> dict:
    """The pre-registration's reference check (module docstring)."""
    from statphys_diffusion import datasets

    ds = datasets.load_cifar10(data, "train", n=32, size=16, seed=0, nested=True, progress=False)
    train = _networks.flat_points(ds.images)
    delta = float(committed_thresholds()["delta_pixels"])
    dist = np.sqrt(((train[:, None] - train[None]) ** 2).sum(-1))
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    extra = 0.5 * (train[i] + train[j])
    sch = sd.DiscreteSchedule.linear(1000)
    gm = sd.GaussianMixture.isotropic(np.vstack([train, extra]), 1e-4, schedule=sch)
    rng = np.random.default_rng(0)
    u = rng.standard_normal(train.shape)
    halo = train + (1.5 * delta) * u / np.linalg.norm(u, axis=1, keepdims=True)  # between delta and 2 delta
    got = {
        "extra_component": return_census(gm, extra[None], train, delta, FULL.times, 8, FULL.return_steps, rng),
        "halo_starts": return_census(gm, halo[:16], train, delta, FULL.times, 4, FULL.return_steps, rng),
    }
    summ = json.loads((ex.ROOT / "figures" / "network_memorization.json").read_text())
    rows = sorted((r for r in summ["results"] if r["budget"] == 8000), key=lambda r: r["N"])
    seed0 = {"N": [r["N"] for r in rows if r["N"] in FULL.ns],
             "memorized": [r["memorized_pixels"] for r in rows if r["N"] in FULL.ns],
             "spurious": [r["spurious_pixels"] for r in rows if r["N"] in FULL.ns], "n": 2000}  # fmt: skip
    verdict = ex.decide(replication_rule, seed0, _redraw, n_resamples=FULL.n_resamples, rng=0)
    report = {
        "delta_pixels": delta,
        "extra_component_distance_to_nearest_training_image": float(np.min(np.linalg.norm(train - extra, axis=1))),
        "part_B": {
            k: [{kk: vv for kk, vv in r.items() if kk != "per_sample_training_image"} for r in v]
            for k, v in got.items()
        },  # fmt: skip
        "part_A_on_seed0": {"fractions": seed0, "verdict": verdict.to_dict()},
    }
    ex.write_json(out, report)
    print(json.dumps(report, indent=1)[:3000])
    return report


# -- the run -------------------------------------------------------------------------------------------


def run(cfg: Config, data, runs: Path, cache, out: Path, progress: bool) -> dict:
    from statphys_diffusion import datasets

    _, digest = ex.preregistration(NAME, require_committed=cfg.mode != "quick")
    if cfg.mode != "quick" and "Status: draft" in (ex.PREREGISTRATIONS / f"{NAME}.md").read_text():
        raise SystemExit(f"{NAME}.md is still a draft: register it (after its reference check) before the run")
    timer = ex.Timer()
    data = data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    bases = {s: _base(cfg, data, runs, s) for s in cfg.seeds}
    if cfg.mode == "quick":
        th = nm.thresholds(bases[0])
    else:
        th = committed_thresholds()
    for b in bases.values():
        b["thresholds"] = th
    delta = float(th["delta_pixels"])
    measure_jobs = [dict(bases[s], N=n) for s in cfg.seeds for n in cfg.ns]
    measured = sd.run_sweep(nm.job, measure_jobs, cache_dir=cache, progress=progress, desc=f"{NAME} networks")
    probe_jobs = [{"config": dataclasses.asdict(cfg), "base": bases[s], "N": n, "delta": delta}
                  for s in cfg.seeds for n in cfg.ns]  # fmt: skip
    probes = sd.run_sweep(probe_job, probe_jobs, cache_dir=cache, progress=progress, desc=f"{NAME} probes")
    by_seed: dict = {}
    for j, r in zip(measure_jobs, measured):
        by_seed.setdefault(int(j["spec"]["seed"]), []).append(r)
    fractions = {
        s: {"N": [r["N"] for r in rs], "n": int(bases[s]["n_samples"]),
            **{k: [r[f"{k}_pixels"] for r in rs] for k in ("memorized", "spurious", "generalized")}}
        for s, rs in by_seed.items()
    }  # fmt: skip
    second = max(cfg.seeds)
    verdict = ex.decide(replication_rule, fractions[second], _redraw, n_resamples=cfg.n_resamples, rng=0)
    diffs = []
    for i, n in enumerate(cfg.ns):
        row = {"N": n}
        for k in ("memorized", "spurious", "generalized"):
            a, b = fractions[0][k][i], fractions[second][k][i]
            se = np.sqrt((a * (1 - a) + b * (1 - b)) / fractions[0]["n"])
            row[f"{k}_difference"] = float(b - a)
            row[f"{k}_z"] = float((b - a) / se) if se > 0 else float("nan")
        diffs.append(row)
    part_b = _part_b(cfg, probes)
    summary = {
        "criterion": replication_rule.__doc__,
        "seed0_crossing_N": SEED0_CROSSING,
        "fractions": {str(s): v for s, v in fractions.items()},
        "crossing_N": {str(s): crossing(v["N"], v["memorized"]) for s, v in fractions.items()},
        "seed_differences": diffs,
        "verdict": verdict.to_dict(),
        "part_B": part_b,
        "threshold_table": [{"seed": p["seed"], "N": p["N"], **row} for p in probes for row in p["threshold_table"]],
        "returns": [
            {
                "seed": p["seed"],
                "N": p["N"],
                "kind": kind,
                **{k: v for k, v in r.items() if k != "per_sample_training_image"},
            }
            for p in probes
            for kind, rows in p["returns"].items()
            for r in rows
        ],  # fmt: skip
        "thresholds": th,
        "networks": {
            str(s): [{k: r[k] for k in ("N", "run", "fd_own", "distinct_copied")} for r in rs]
            for s, rs in by_seed.items()
        },  # fmt: skip
        "provenance": ex.provenance(cfg, digest, timer.seconds),
    }
    tag = "_quick" if cfg.mode == "quick" else ""
    write(summary, out / f"{NAME}{tag}")
    return summary


def _part_b(cfg: Config, probes: list[dict]) -> dict:
    """Part B's classification at ``decide_t`` over every network's spurious returns, and its gate."""

    def pooled(kind: str, t: float) -> dict:
        rows = [r for p in probes for r in p["returns"][kind] if r["t"] == t and r["n"] > 0]
        n = sum(r["n"] for r in rows)
        if n == 0:
            return {"n": 0}
        return {"n": n, **{o: sum(r[o] * r["n"] for r in rows) / n for o in (*OUTCOMES, "nearest")}}

    gate = pooled("memorized", cfg.gate_t)
    passes = gate.get("n", 0) > 0 and gate["training image"] >= 0.9
    spur = pooled("spurious", cfg.decide_t)
    if not passes:
        call = "not testable"
    elif spur.get("n", 0) == 0:
        call = "not testable (no spurious samples)"
    elif spur["training image"] > 0.5:
        call = "halos of one image"
    elif spur["itself"] > 0.5:
        call = "attractors of their own"
    else:
        call = "mixed"
    return {"gate_memorized_to_training_image": gate, "gate_passes": bool(passes), "spurious_at_decide_t": spur,
            "decide_t": cfg.decide_t, "call": call}  # fmt: skip


def _n_axis(ax, ns) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(ns), [str(n) for n in ns])
    ax.minorticks_off()


def write(summary: dict, stem: Path) -> None:
    from statphys_diffusion._io import write_rows_csv

    stem.parent.mkdir(parents=True, exist_ok=True)
    write_rows_csv(stem.with_suffix(".csv"), summary["threshold_table"])
    write_rows_csv(stem.parent / f"{stem.name}_returns.csv", summary["returns"])
    ex.write_json(stem.with_suffix(".json"), summary)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    for s, fr in summary["fractions"].items():
        k = fr["n"]
        for key, marker in (("memorized", "o"), ("spurious", "s")):
            f = np.asarray(fr[key])
            ci = np.array([_wilson(int(round(v * k)), k) for v in f])
            ax.errorbar(fr["N"], f, yerr=[f - ci[:, 0], ci[:, 1] - f], marker=marker, capsize=2,
                        ls="-" if s == "0" else "--", label=f"{key}, seed {s}")  # fmt: skip
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.axvline(summary["seed0_crossing_N"], color="0.6", ls=":", lw=0.8)
    _n_axis(ax, summary["fractions"]["0"]["N"])
    ax.set_xlabel("N (training images)")
    ax.set_ylabel(f"fraction of {summary['fractions']['0']['n']:,} samples (95% Wilson)")
    ax.legend(fontsize=6)
    ax.set_title(f"A. second seed: {summary['verdict']['outcome']}", fontsize=9)
    ax = axes[1]
    rows = summary["threshold_table"]
    for ratio, ls in ((2 / 3, "--"), (1.0, "-")):
        for s in sorted({r["seed"] for r in rows}):
            sel = sorted((r for r in rows if r["seed"] == s and abs(r["ratio"] - ratio) < 1e-9), key=lambda r: r["N"])
            f = np.array([r["spurious"] for r in sel])
            lo, hi = np.array([r["spurious_lo"] for r in sel]), np.array([r["spurious_hi"] for r in sel])
            ax.errorbar([r["N"] for r in sel], f, yerr=[f - lo, hi - f], ls=ls, marker="s", capsize=2,
                        label=f"delta_s/delta_m = {ratio:.2g}, seed {s}")  # fmt: skip
    _n_axis(ax, summary["fractions"]["0"]["N"])
    ax.set_xlabel("N")
    ax.set_ylabel("spurious fraction")
    ax.legend(fontsize=6)
    ax.set_title("C. the threshold table", fontsize=9)
    ax = axes[2]
    ret = summary["returns"]
    ts = sorted({r["t"] for r in ret})
    width = 0.38
    for j, kind in enumerate(("spurious", "memorized")):
        bottom = np.zeros(len(ts))
        for o, colour in zip(OUTCOMES, ("C0", "C3", "0.6")):
            share = []
            for t in ts:
                sel = [r for r in ret if r["kind"] == kind and r["t"] == t and r["n"] > 0]
                n = sum(r["n"] for r in sel)
                share.append(sum(r[o] * r["n"] for r in sel) / n if n else 0.0)
            x = np.arange(len(ts)) + (j - 0.5) * width
            ax.bar(x, share, width, bottom=bottom, color=colour, edgecolor="k", lw=0.3,
                   hatch="" if kind == "spurious" else "//", label=f"{kind}: {o}")  # fmt: skip
            bottom += np.asarray(share)
    ax.set_xticks(np.arange(len(ts)), [f"t = {t:g}" for t in ts])
    ax.set_ylabel("share of returns")
    ax.set_ylim(0, 1.3)  # the legend above the bars, not on them
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=5, ncol=2, loc="upper center")
    ax.set_title(f"B. where a noised sample returns: {summary['part_B']['call']}", fontsize=9)
    save_figure(fig, stem.with_suffix(".png"))


def main(argv=None) -> dict:
    args = ex.parser(__doc__, "two tiny networks at 8 x 8: the pipeline only").parse_args(argv)
    if args.reference_check:
        return reference_check(args.data, ex.PREREGISTRATIONS / f"{NAME}_reference_check.json")
    cache, out = ex.destinations(args, JOBS)
    return run(QUICK if args.quick else FULL, args.data, ex.ROOT / args.runs, cache, out, args.progress)


if __name__ == "__main__":
    main()
