"""Result 2 on trained networks: memorised, spurious and generalised samples versus N (Pham et al. 2025).

Networks: the ``tiny`` UNet on nested random subsets of N CIFAR-10 training images at
16 x 16 (``_networks.MEMORIZATION``: EDM preconditioning, log-normal noise, 8,000 steps
of batch 64 = 512k images per network for every N; a second budget of 4,000 steps), cached by configuration hash and
resumable. The N grid is adaptive, on the lattice N_j = round(2^(j/2)) (x sqrt(2)):
start at N = 16, step by x4 until the memorised fraction crosses 1/2, bisect the bracket
down to one lattice step, then fill the lattice points around the crossing (``--window``
each side: 3 gives seven points).

Per network (``job``):

1. 2,000 DDIM samples (50 steps, eta = 0), clipped to the pixel range, classified with
   Pham et al.'s rule (``sd.classify_samples``): memorised if the nearest training image
   is within delta_m, else spurious if the nearest *other* sample is within delta_s, else
   generalised; on pixels (L2) and in the evaluation classifier's feature space.
   Thresholds, fixed before any network is measured: delta_m = delta_s = 1/3 of the median
   distance of a training image to its nearest distinct other training image, over 2,000
   images against all 50,000 (the factor 1/3 of the usual nearest-neighbour ratio test),
   separately for pixels and features.
2. Recovery times (``sd.recovery_time``, p = 0.9, 8 trials, 20 DDIM steps, delta = delta_m)
   of up to 24 samples of each category.
3. The regime map (``sd.regime_map``): train/held-out denoising gap and the distance to the
   exact empirical denoiser at eight times.
4. FD_own: Frechet distance of the samples' classifier features to the 10,000 test images'.
5. The exact empirical model's attractor census over a t sweep (held-out and noised training
   starts), to show where mixture states of the empirical energy exist at all.

Stated before the run (``CRITERION``):

- gates: the memorised fraction crosses 1/2 inside the grid; the regime map calls the
  smallest-N network "memorising" and the largest-N network "generalising" or "mixed" at
  the gate time t = 20 (not "not converged": its novel samples would be garbage);
- confirmed if the spurious fraction has an interior maximum whose Wilson interval lies above
  the intervals at both ends of the grid, at an N within one lattice step (x sqrt(2)) of the
  memorised-fraction crossing, and at that N the spurious samples' median recovery time is
  above the smallest probed time and below the memorised samples' median; refuted otherwise;
  not testable when a gate fails.

Usage:
    python validation/network_memorization.py [--quick] [--budgets 8000 4000] [--window 3] [--second-window 0]
        [--also N ...] [--runs runs] [--replot] [--extend]

``--extend`` keeps the networks of the written JSON (``--out``) and measures only the N that the
grid options add (for instance a wider ``--window``); it stops if the thresholds recomputed from
the data and the evaluation classifier differ from the written ones.

``--also`` adds training-set sizes to the primary budget's grid (used when the window around the
crossing does not reach a network that the regime map calls generalising: the gate).

The second budget (4,000 steps, 256k images: the old runs' step count) is located only (its
crossing and the networks that bracket it), to show whether the crossing moves with the budget.
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
import _driver  # noqa: E402
import _experiment as ex  # noqa: E402
import _networks  # noqa: E402

import statphys_diffusion as sd  # noqa: E402
from statphys_diffusion._io import write_rows_csv  # noqa: E402

CATEGORIES = ("memorized", "spurious", "generalized")
REGIME_TIMES = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 400.0)
GATE_T = 20.0
CENSUS_TIMES = (10.0, 20.0, 50.0, 100.0, 200.0, 400.0)
THRESHOLD_FACTOR = 1.0 / 3.0
START_J = 8  # N = 16
CRITERION = (
    "gates: memorised fraction (pixels) crosses 1/2 inside the grid; regime map at t = 20: smallest N "
    "'memorising', largest N 'generalising' or 'mixed'. Confirmed if the spurious fraction (pixels) has an "
    "interior maximum whose Wilson interval lies above those at both grid ends, within one lattice step "
    "(x sqrt 2) of the N where the memorised fraction crosses 1/2, and there the spurious samples' median "
    "recovery time is above the smallest probed t and below the memorised samples' median; refuted "
    "otherwise; not testable when a gate fails."
)
QUICK = {"size": 8, "steps": 30, "batch_size": 16, "lr": 2e-3, "ns": (4, 8)}


@dataclass(frozen=True)
class Sizes:
    """One mode's measurement sizes (issue 34's experiment shape); FULL_SIZES made the committed outputs.
    Their fields go into every job's configuration under these names, as before."""

    sample_steps: int  # DDPM steps per generated sample
    n_samples: int  # generated samples per network
    n_recovery: int  # samples per kind probed for their recovery time
    recovery_trials: int
    regime_points: int  # held-out points of the regime map
    n_cues: int  # cues of the attractor census
    census_iter: int
    n_spacing: int  # training-set spacing sample for the thresholds
    clf_steps: int  # evaluation classifier training steps


FULL_SIZES = Sizes(50, 2000, 24, 8, 256, 64, 300, 2000, 3000)
QUICK_SIZES = Sizes(10, 32, 2, 2, 16, 4, 20, 200, 50)


def lattice(j: int) -> int:
    """N_j = round(2^(j / 2)): the x sqrt(2) grid of training-set sizes."""
    return int(round(2.0 ** (j / 2.0)))


def _features_fn(net, size: int):
    from statphys_diffusion.nets import classifier as clf

    def f(rows: np.ndarray) -> np.ndarray:
        img = np.clip(rows, -1, 1).reshape(-1, 3, size, size).astype(np.float32)
        return clf.features(net, img).astype(np.float64)

    return f


def _nn_spacing(x: np.ndarray, n_query: int, rng) -> float:
    """Median distance of n_query rows of x to their nearest distinct other row of x."""
    q = rng.choice(x.shape[0], min(n_query, x.shape[0]), replace=False)
    nn = sd.nearest_neighbours(x[q], x, k=3)
    d = np.where(nn.distances[:, 1] > 1e-9, nn.distances[:, 1], nn.distances[:, 2])
    return float(np.median(d))


def thresholds(cfg: dict) -> dict:
    """delta (pixels and features): THRESHOLD_FACTOR x the median nearest-distinct-neighbour spacing."""
    from statphys_diffusion import datasets

    full = datasets.load_cifar10(cfg["data"], "train", size=cfg["size"], progress=False)
    x = _networks.flat_points(full.images)
    feat = _features_fn(_networks.evaluation_classifier(cfg), cfg["size"])(x)
    rng = np.random.default_rng(5)
    sp_pix, sp_feat = _nn_spacing(x, cfg["n_spacing"], rng), _nn_spacing(feat, cfg["n_spacing"], rng)
    return {
        "spacing_pixels": sp_pix,
        "spacing_features": sp_feat,
        "delta_pixels": THRESHOLD_FACTOR * sp_pix,
        "delta_features": THRESHOLD_FACTOR * sp_feat,
    }


def _summary(v: np.ndarray) -> dict:
    if v.size == 0:
        return {"n": 0, "median": float("nan"), "q25": float("nan"), "q75": float("nan")}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"n": int(v.size), "median": float(med), "q25": float(q25), "q75": float(q75)}


def job(cfg: dict) -> dict:
    """Train (or reuse) the network for one (N, budget) and measure it; JSON-serialisable result."""
    import torch

    from statphys_diffusion import datasets
    from statphys_diffusion.metrics import frechet_distance
    from statphys_diffusion.samplers import DDIM

    t0 = time.time()
    n = int(cfg["N"])
    torch.set_num_threads(int(cfg["threads"]))
    model, ds, name = _networks.memorization_network(
        cfg["runs"], n, cfg["steps"], data=cfg["data"], spec=cfg["spec"], size=cfg["size"]
    )
    t_train = time.time() - t0
    sch = model.schedule
    train = _networks.flat_points(ds.images)
    test = _networks.flat_points(datasets.load_cifar10(cfg["data"], "test", size=cfg["size"], progress=False).images)
    feat = _features_fn(_networks.evaluation_classifier(cfg), cfg["size"])
    rng = np.random.default_rng(1000 + n)
    res = {"N": n, "budget": int(cfg["steps"]), "images_seen": int(cfg["steps"]) * cfg["spec"]["batch_size"]}
    res["run"] = name
    # 1. samples, classified on pixels and on classifier features
    x = np.clip(DDIM(cfg["sample_steps"]).sample(model, n=cfg["n_samples"], rng=rng).x, -1, 1)
    th = cfg["thresholds"]
    cls = {
        "pixels": sd.classify_samples(x, train, delta_m=th["delta_pixels"], delta_s=th["delta_pixels"]),
        "features": sd.classify_samples(
            x, train, delta_m=th["delta_features"], delta_s=th["delta_features"], features=feat
        ),
    }
    for space, c in cls.items():
        for k in CATEGORIES:
            res[f"{k}_{space}"] = c.fractions[k]
            res[f"{k}_{space}_lo"] = c.fractions_low[k]
            res[f"{k}_{space}_hi"] = c.fractions_high[k]
        res[f"median_d_train_{space}"] = float(np.median(c.d_train))
        res[f"median_d_synth_{space}"] = float(np.median(c.d_synth))
    lab = cls["pixels"].labels
    res["distinct_copied"] = int(np.unique(cls["pixels"].train_index[lab == "memorized"]).size)
    # 2. recovery times per category
    res["recovery"] = {}
    for k in CATEGORIES:
        idx = np.flatnonzero(lab == k)[: cfg["n_recovery"]]
        if idx.size == 0:
            res["recovery"][k] = dict(_summary(np.array([])), bracketed=0.0)
            continue
        rt = sd.recovery_time(
            model, x[idx], delta=th["delta_pixels"], p=0.9, n_trials=cfg["recovery_trials"], steps=20, rng=rng
        )
        res["recovery"][k] = dict(_summary(rt.t), bracketed=float(np.mean(rt.bracketed)), t_lo=rt.t_lo)
    # 3. regime map
    rm = sd.regime_map(model, train, test, np.array(REGIME_TIMES), n_points=cfg["regime_points"], rng=rng)
    emp = list(rm.references).index("empirical")
    res["regime"] = {
        "t": rm.times.tolist(),
        "regime": [str(v) for v in rm.regime],
        "gap": rm.gap.tolist(),
        "gap_stderr": rm.gap_stderr.tolist(),
        "mse_train": rm.mse_train.tolist(),
        "mse_held": rm.mse_held.tolist(),
        "distance_empirical_train": rm.distance_train[:, emp].tolist(),
        "distance_empirical_held": rm.distance_held[:, emp].tolist(),
    }
    # 4. FD_own of the samples
    f_test = feat(test)
    res["fd_own"] = float(frechet_distance(feat(x), f_test))
    # 5. the exact empirical model's census over t
    exact = sd.EmpiricalDistribution(train, schedule=sch)
    res["exact_census"] = []
    for t in CENSUS_TIMES:
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        cues = test[rng.choice(test.shape[0], cfg["n_cues"], replace=False)]
        noised = train[rng.integers(0, n, cfg["n_cues"])] + (s / a) * rng.standard_normal(
            (cfg["n_cues"], train.shape[1])
        )
        census = sd.attractor_census(exact, np.vstack([cues, noised]), t, max_iter=cfg["census_iter"], rng=rng)
        res["exact_census"].append(census.summary())
    res["seconds_train"], res["seconds"] = t_train, time.time() - t0
    return res


def _measure(base: dict, n: int, cache: Path, done: dict) -> dict:
    if n not in done:
        cfg = dict(base, N=n)
        done[n] = sd.run_sweep(job, [cfg], cache_dir=cache, workers=1, desc=f"N = {n}")[0]
        r = done[n]
        print(
            f"N = {n}: memorised {r['memorized_pixels']:.3f}, spurious {r['spurious_pixels']:.3f}, "
            f"generalised {r['generalized_pixels']:.3f} ({r['seconds']:.0f} s)",
            flush=True,
        )
    return done[n]


def adaptive_grid(
    base: dict, cache: Path, *, half_width: int = 3, j_min: int = 2, j_max: int = 22, done: dict | None = None
) -> tuple[dict, float | None]:
    """Locate the memorised-fraction crossing on the lattice, then measure the 2 half_width + 1 points around it.

    ``done`` maps N to results already measured at this budget (``--extend``); only the others are measured.
    """
    done = {} if done is None else dict(done)
    mem = lambda j: _measure(base, lattice(j), cache, done)["memorized_pixels"]  # noqa: E731
    j = START_J
    above = mem(j) >= 0.5
    lo = hi = None
    while j_min <= j <= j_max:
        nxt = j + 4 if above else j - 4
        if not j_min <= nxt <= j_max:
            break
        if (mem(nxt) >= 0.5) != above:
            lo, hi = (j, nxt) if above else (nxt, j)
            break
        j = nxt
    if lo is None:
        return done, None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mem(mid) >= 0.5:
            lo = mid
        else:
            hi = mid
    centre = lo if abs(mem(lo) - 0.5) <= abs(mem(hi) - 0.5) else hi
    for jj in range(max(j_min, centre - half_width), min(j_max, centre + half_width) + 1):
        mem(jj)
    return done, _crossing({n: r["memorized_pixels"] for n, r in done.items()})


def _previous_results(path: Path, th: dict) -> list[dict]:
    """The results of a written summary, refused unless its thresholds equal the ones just computed.

    Samples of kept and new networks are classified alike only with the same delta_m and
    delta_s; the thresholds are recomputed from the data and the evaluation classifier, so a
    retrained classifier that differs is caught here rather than mixed into one grid. The
    tolerance is relative 1e-5: the classifier is retrained from its configuration when its
    cache is gone, and float32 training reproduces it only to rounding (a retrained classifier
    moved the feature spacing by 1.7e-7 relative), which cannot reclassify a sample in practice;
    a different classifier or data set moves it by far more.
    """
    if not path.is_file():
        raise SystemExit(f"--extend: no written summary at {path}")
    summary = json.loads(path.read_text())
    old = summary["thresholds"]
    for key, value in th.items():
        if not np.isclose(old[key], value, rtol=1e-5, atol=0.0):
            raise SystemExit(f"--extend: threshold {key} is {value!r} now and {old[key]!r} in {path}; not extending")
    return list(summary["results"])


def _extension_record(previous: list[dict], results: list[dict], path: Path) -> dict:
    """Which (N, budget) were kept from the written summary and which were measured by this run."""
    old = {(r["N"], r["budget"]) for r in previous}
    return {
        "from": path.name,
        "kept": sorted([n, b] for n, b in old),
        "measured_this_run": sorted([r["N"], r["budget"]] for r in results if (r["N"], r["budget"]) not in old),
        "previous_seconds_total": float(sum(r["seconds"] for r in previous)),
    }


def _crossing(mem: dict) -> float | None:
    """N where the memorised fraction first falls below 1/2, interpolated linearly in log N."""
    ns = sorted(mem)
    for a, b in zip(ns[:-1], ns[1:]):
        if mem[a] >= 0.5 > mem[b]:
            w = (mem[a] - 0.5) / (mem[a] - mem[b])
            return float(np.exp((1 - w) * np.log(a) + w * np.log(b)))
    return None


def verdict(results: list[dict], crossing: float | None) -> dict:
    """Apply CRITERION to the measured grid (sorted by N)."""
    rs = sorted(results, key=lambda r: r["N"])
    ns = np.array([r["N"] for r in rs], dtype=float)
    gi = REGIME_TIMES.index(GATE_T)
    gates = {
        "memorized_crosses_half": crossing is not None,
        "smallest_N_memorising": rs[0]["regime"]["regime"][gi] == "memorising",
        "largest_N_generalising": rs[-1]["regime"]["regime"][gi] in ("generalising", "mixed"),
    }
    sp = np.array([r["spurious_pixels"] for r in rs])
    i = int(np.argmax(sp))
    interior = 0 < i < len(rs) - 1
    above_ends = interior and rs[i]["spurious_pixels_lo"] > max(
        rs[0]["spurious_pixels_hi"], rs[-1]["spurious_pixels_hi"]
    )
    near = crossing is not None and abs(np.log2(ns[i]) - np.log2(crossing)) <= 0.5 + 1e-9
    rec = rs[i]["recovery"]
    rs_med, rm_med = rec["spurious"]["median"], rec["memorized"]["median"]
    t_lo = rec["spurious"].get("t_lo", 1.0)
    recovery_ok = bool(np.isfinite(rs_med) and np.isfinite(rm_med) and t_lo < rs_med < rm_med)
    criteria = {
        "spurious_interior_max": bool(above_ends),
        "peak_within_one_step_of_crossing": bool(near),
        "spurious_recovery_between": recovery_ok,
    }
    if not all(gates.values()):
        v = "not testable with this network"
    elif all(criteria.values()):
        v = "confirmed"
    else:
        v = "refuted"
    return {"gates": gates, "criteria": criteria, "spurious_peak_N": int(ns[i]), "verdict": v}


def _rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in sorted(results, key=lambda r: (r["budget"], r["N"])):
        row = {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        for k in CATEGORIES:  # the primary classification (pixels) under the plain names
            for suffix in ("", "_lo", "_hi"):
                row[f"{k}{suffix}"] = r[f"{k}_pixels{suffix}"]
        for k in CATEGORIES:
            for q in ("n", "median", "q25", "q75", "bracketed"):
                row[f"recovery_{k}_{q}"] = r["recovery"][k][q]
        gi = REGIME_TIMES.index(GATE_T)
        row["regime_t20"] = r["regime"]["regime"][gi]
        row["gap_t20"] = r["regime"]["gap"][gi]
        row["distance_empirical_train_t20"] = r["regime"]["distance_empirical_train"][gi]
        row["exact_census_spurious_max"] = max(c["n_spurious"] for c in r["exact_census"])
        rows.append(row)
    return rows


def main(argv=None):
    p = _networks.parser(__doc__, "two tiny N at 8 x 8, 30 steps: checks the pipeline, not the science")
    p.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=list(_networks.MEMORIZATION["budgets"]),
        help="training steps per network; the first is the primary budget (the verdict), the others are located only",
    )
    p.add_argument("--replot", action="store_true", help="redraw the figure from the written JSON")
    p.add_argument(
        "--extend",
        action="store_true",
        help="keep the networks measured in the written JSON (same thresholds required) and measure only the "
        "N that the grid options add",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads per job")
    p.add_argument("--window", type=int, default=3, help="lattice points measured each side of the crossing")
    p.add_argument("--second-window", type=int, default=0, help="the same for the other budgets")
    p.add_argument(
        "--also",
        type=int,
        nargs="*",
        default=[],
        help="more N measured at the primary budget (e.g. to reach generalisation)",
    )
    args = p.parse_args(argv)
    tag = "_quick" if args.quick else ""
    out = Path(args.out)
    if args.replot:
        summary = json.loads((out / f"network_memorization{tag}.json").read_text())
        _plot(summary["results"], summary, out / f"network_memorization{tag}.png")
        return summary
    from statphys_diffusion import datasets

    data = args.data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    out.mkdir(parents=True, exist_ok=True)
    spec = dict(_networks.MEMORIZATION["train"])
    size = _networks.MEMORIZATION["size"]
    if args.quick:
        spec.update(batch_size=QUICK["batch_size"], lr=QUICK["lr"])
        size = QUICK["size"]
    base = {
        "data": str(data),
        "size": size,
        "spec": spec,
        "steps": QUICK["steps"] if args.quick else args.budgets[0],
        **dataclasses.asdict(QUICK_SIZES if args.quick else FULL_SIZES),
        "runs": str(Path(args.runs) / ("memorization-quick" if args.quick else "memorization")),
        "threads": args.threads,
    }
    t0 = time.time()
    base["thresholds"] = thresholds(base)
    print(f"thresholds: {base['thresholds']}", flush=True)
    previous = _previous_results(out / f"network_memorization{tag}.json", base["thresholds"]) if args.extend else []
    cache = Path(base["runs"]) / "results"
    budgets = [QUICK["steps"]] if args.quick else list(dict.fromkeys(args.budgets))
    per_budget, results = [], []
    for k, steps in enumerate(budgets):
        cfg = dict(base, steps=int(steps))
        kept = {r["N"]: r for r in previous if r["budget"] == int(steps)}
        if args.quick:
            done = {n: _measure(cfg, n, cache, kept) for n in QUICK["ns"]}
            crossing = _crossing({n: r["memorized_pixels"] for n, r in done.items()})
        else:
            done, crossing = adaptive_grid(
                cfg, cache, half_width=args.window if k == 0 else args.second_window, done=kept
            )
            if k == 0 and args.also:
                for n in args.also:
                    _measure(cfg, int(n), cache, done)
                crossing = _crossing({n: r["memorized_pixels"] for n, r in done.items()})
        res = [done[n] for n in sorted(done)]
        results += res
        per_budget.append(
            {
                "steps": int(steps),
                "images_per_network": int(steps) * spec["batch_size"],
                "N": [r["N"] for r in res],
                "memorized_half_crossing_N": crossing,
                **verdict(res, crossing),
            }
        )
    primary = per_budget[0]
    summary = {
        "quick": args.quick,
        "criterion": CRITERION,
        "budget_steps": primary["steps"],
        "images_per_network": primary["images_per_network"],
        "training": spec,
        "thresholds": base["thresholds"],
        "memorized_half_crossing_N": primary["memorized_half_crossing_N"],
        **{k: primary[k] for k in ("gates", "criteria", "spurious_peak_N", "verdict")},
        "budgets": per_budget,
        "seconds": time.time() - t0,
        "extended": _extension_record(previous, results, out / f"network_memorization{tag}.json")
        if args.extend
        else None,
        "results": results,
    }
    config = {k: v for k, v in base.items() if k not in ("runs", "data", "thresholds", "steps")}  # provenance only
    summary["provenance"] = ex.provenance(config, None, summary["seconds"])
    write_rows_csv(out / f"network_memorization{tag}.csv", _rows(results))
    (out / f"network_memorization{tag}.json").write_text(json.dumps(summary, indent=2, default=float))
    _plot(results, summary, out / f"network_memorization{tag}.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2, default=float))
    return summary


def _plot(results: list[dict], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    primary = summary["budget_steps"]
    rs = sorted((r for r in results if r["budget"] == primary), key=lambda r: r["N"])
    others = [r for r in results if r["budget"] != primary]
    ns = np.array([r["N"] for r in rs])
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    for space, ax in zip(("pixels", "features"), axes[:2]):
        for k, c in zip(CATEGORIES, ("C0", "C3", "C2")):
            f = np.array([r[f"{k}_{space}"] for r in rs])
            lo = np.array([r[f"{k}_{space}_lo"] for r in rs])
            hi = np.array([r[f"{k}_{space}_hi"] for r in rs])
            ax.errorbar(ns, f, yerr=[np.clip(f - lo, 0, None), np.clip(hi - f, 0, None)], fmt="o-", color=c, label=k)
        for b in sorted({r["budget"] for r in others}):
            ob = sorted((r for r in others if r["budget"] == b), key=lambda r: r["N"])
            ax.plot(
                [r["N"] for r in ob],
                [r[f"memorized_{space}"] for r in ob],
                "^--",
                color="C0",
                alpha=0.5,
                label=f"memorized, {b * summary['training']['batch_size'] / 1e3:.0f}k images",
            )
        if summary.get("memorized_half_crossing_N"):
            ax.axvline(summary["memorized_half_crossing_N"], color="k", ls=":", lw=1, label="memorised = 1/2")
        ax.set_xscale("log")
        ax.set_xlabel("N training images")
        ax.set_ylabel("fraction of samples (Wilson 95%)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Pham et al.'s classification, {space} (delta = {summary['thresholds'][f'delta_{space}']:.3g})")
        ax.legend(fontsize=7)
    ax = axes[2]
    for k, c in zip(CATEGORIES, ("C0", "C3", "C2")):
        med = np.array([r["recovery"][k]["median"] for r in rs])
        q25 = np.array([r["recovery"][k]["q25"] for r in rs])
        q75 = np.array([r["recovery"][k]["q75"] for r in rs])
        ok = np.isfinite(med)
        ax.errorbar(ns[ok], med[ok], yerr=[med[ok] - q25[ok], q75[ok] - med[ok]], fmt="o-", color=c, label=k)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N training images")
    ax.set_ylabel("recovery time t (median, IQR; p = 0.9)")
    ax.set_title("Largest noise from which a sample is recovered")
    ax.legend(fontsize=7)
    ax = axes[3]
    ti = [REGIME_TIMES.index(t) for t in (5.0, 20.0, 100.0)]
    for i, c in zip(ti, ("C0", "C1", "C2")):
        t = REGIME_TIMES[i]
        ax.plot(ns, [r["regime"]["gap"][i] for r in rs], "o-", color=c, label=f"held-out - train gap, t = {t:g}")
        ax.plot(
            ns,
            [r["regime"]["distance_empirical_train"][i] for r in rs],
            "s:",
            color=c,
            label=f"to exact empirical, t = {t:g}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("N training images")
    ax.set_ylabel("relative units (regime map)")
    ax.set_title("Regime map")
    ax.legend(fontsize=6)
    for ax in axes:  # label the measured N, not log-axis minor ticks
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    _driver.save_figure(
        fig,
        path,
        f"Tiny UNets on N CIFAR-10 images (16 x 16), {summary['images_per_network'] / 1e3:.0f}k training images each: "
        f"verdict {summary['verdict']}",
        dpi=110,
    )


if __name__ == "__main__":
    main()
