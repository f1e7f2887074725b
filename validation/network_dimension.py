"""Result 4 on image networks: the manifold dimension the networks show through Result 2's transition.

Achilli et al. 2024 ("Losing dimensions") read memorisation as a loss of tangent dimensions: at a
point near the data, the score's Jacobian has a tangent block (small eigenvalues) and a normal
block (about -1/sigma^2); a network that memorises a training image has no tangent block there.
This script applies the package's black-box estimator (``sd.manifold_dimension``: the singular
spectrum of the probed score matrix, normalised by its largest value) to Result 2's networks
(``network_memorization.py``: the ``tiny`` UNets on nested subsets of N CIFAR-10 images at
16 x 16, EDM preconditioning, 8,000 steps of batch 64 for every N, committed as weights/) and to
two twins for one N in the transition: the same data, budget and seed with an eps-prediction
and an x0-prediction network.

Per network: ``N_TRAIN_POINTS`` training images, and for the EDM networks up to
``N_PER_CATEGORY`` samples of each of Pham et al.'s categories (memorised, spurious,
generalised; 400 DDIM samples classified with Result 2's pixel threshold delta = 2.79 from
``figures/network_memorization.json``); at each of ``TIMES`` (DDPM-linear steps, small noise:
sigma_t = 0.017 to 0.076) all d = 768 orthonormal probes, antithetic. The dimension is the
``level`` rule: the number of normalised singular values below 1/2 ("directions still tangent at
this t"; the largest-gap rule finds no gap on these spectra). Counts at 1/4 and 3/4 are kept too.

Stated before the run (``CRITERION``):

- trust: a time t is trusted when (a) at the twin N the three networks (EDM, eps, x0) give
  median dimensions at the training points within 10% of each other (max - min <= 0.1 x mean),
  and (b) Result 2's regime map of every EDM network is neither "not converged" nor
  "undetermined" at t;
- at the smallest trusted t, D(N) is the median dimension at the training points;
- confirmed ("the dimension at training points falls gradually with N through the transition")
  if D(64) - D(16) exceeds 10% of max(D(16), D(64)), D changes monotonically over N = 16 to 64
  (no step against the trend by more than 10% of that change), and no single x sqrt(2) step of
  16, 23, 32, 45, 64 carries more than half of the change; refuted otherwise (a jump, no change,
  or the reverse order); not testable when no t is trusted.

Usage:
    python validation/network_dimension.py [--quick] [--workers 2] [--runs runs] [--out figures]
"""

from __future__ import annotations

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

# 11 and 91 were added when Result 2's grid was completed to seven x sqrt(2) points around its
# crossing; they are descriptive (the criterion reads WINDOW, unchanged)
NETWORK_NS = (11, 16, 23, 32, 45, 64, 91, 128, 512)
WINDOW = (16, 23, 32, 45, 64)  # the lattice points around Result 2's crossing (N = 33.7)
TWIN_N = 32
TWINS = ("edm", "eps", "x0")
TIMES = (2.0, 5.0, 10.0, 20.0)
LEVELS = (0.25, 0.5, 0.75)
N_TRAIN_POINTS = 4
N_PER_CATEGORY = 2
N_SAMPLES = 400
TWIN_TOL = 0.10
CATEGORIES = ("memorized", "spurious", "generalized")
UNTRUSTED_REGIMES = ("not converged", "undetermined")
CRITERION = (
    "trusted t: EDM, eps and x0 twins at N = 32 give median dimensions (level 1/2) at training points within "
    "10% (max - min <= 0.1 mean), and Result 2's regime map is neither 'not converged' nor 'undetermined' for "
    "every network at t. At the smallest trusted t, D(N) = median dimension at training points. Confirmed if "
    "D(64) - D(16) > 0.1 max(D(16), D(64)), D is monotone over 16..64 (no counter-step > 10% of the change), "
    "and no single x sqrt 2 step carries more than half of the change; refuted otherwise; not testable when no "
    "t is trusted."
)
QUICK = {"size": 8, "steps": 30, "batch_size": 16, "ns": (4, 8), "twin_n": 4, "times": (5.0, 20.0)}


@dataclass(frozen=True)
class Sizes:
    """One mode's grid and sizes (issue 34's experiment shape); FULL_SIZES made the committed outputs."""

    ns: tuple  # training-set sizes of the EDM networks
    twin_n: int  # N of the parameterisation twins
    times: tuple
    n_train_points: int
    n_per_category: int
    n_samples: int
    window: tuple | None  # the N of the verdict (None: all of ns)


FULL_SIZES = Sizes(NETWORK_NS, TWIN_N, TIMES, N_TRAIN_POINTS, N_PER_CATEGORY, N_SAMPLES, WINDOW)
QUICK_SIZES = Sizes(QUICK["ns"], QUICK["twin_n"], QUICK["times"], 2, 1, 16, None)


def _dimensions(sv: np.ndarray) -> dict:
    """Counts of normalised singular values below each of ``LEVELS``."""
    return {f"dim_{lev:g}": int(np.sum(sv < lev)) for lev in LEVELS}


def job(cfg: dict) -> dict:
    """One network (N, prediction): the dimension at training points (and samples, EDM only)."""
    import torch

    from statphys_diffusion.samplers import DDIM

    t0 = time.time()
    torch.set_num_threads(int(cfg["threads"]))
    n = int(cfg["N"])
    spec = dict(cfg["spec"], prediction=cfg["prediction"])
    model, ds, name = _networks.memorization_network(
        cfg["runs"], n, cfg["steps"], data=cfg["data"], spec=spec, size=cfg["size"]
    )
    train = _networks.flat_points(ds.images)
    rng = np.random.default_rng(2000 + n)
    points = [("train", int(i), train[i]) for i in rng.choice(n, min(cfg["n_train_points"], n), replace=False)]
    fractions = {}
    if cfg["with_samples"]:
        x = np.clip(DDIM(50).sample(model, n=cfg["n_samples"], rng=rng).x, -1, 1)
        delta = cfg["delta_pixels"]
        cls = sd.classify_samples(x, train, delta_m=delta, delta_s=delta)
        fractions = {k: float(cls.fractions[k]) for k in CATEGORIES}
        for k in CATEGORIES:
            points += [(k, int(i), x[i]) for i in np.flatnonzero(cls.labels == k)[: cfg["n_per_category"]]]
    rows = []
    for kind, idx, p in points:
        res = sd.manifold_dimension(model, p, np.array(cfg["times"]), rule="level", rng=int(rng.integers(2**31)))
        for i, t in enumerate(res.times):
            sv = res.singular_values[i]
            rows.append({"t": float(t), "kind": kind, "index": idx, **_dimensions(sv), "scale": float(res.scale[i])})
    return {"N": n, "prediction": cfg["prediction"], "run": name, "fractions": fractions, "rows": rows,
            "seconds": time.time() - t0}  # fmt: skip


def _median_train(res: dict, t: float, key: str = "dim_0.5") -> float:
    v = [r[key] for r in res["rows"] if r["kind"] == "train" and r["t"] == t]
    return float(np.median(v)) if v else float("nan")


def trusted_times(twins: dict, regimes: dict, times) -> dict:
    """Per t: the twins' medians, their spread, the regime gate, and whether t is trusted."""
    out = {}
    for t in times:
        meds = {p: _median_train(twins[p], t) for p in twins}
        vals = np.array(list(meds.values()))
        mean = float(vals.mean())
        spread = 0.0 if vals.max() == vals.min() else float((vals.max() - vals.min()) / max(mean, 1e-300))
        regime_ok = all(r.get(t, "undetermined") not in UNTRUSTED_REGIMES for r in regimes.values())
        out[t] = {"twin_medians": meds, "twin_spread": spread, "twins_agree": spread <= TWIN_TOL,
                  "regime_ok": regime_ok, "trusted": spread <= TWIN_TOL and regime_ok}  # fmt: skip
    return out


def verdict(d_of_n: dict, window) -> tuple[str, dict]:
    """The pre-stated rule on D(N) over ``window`` (see CRITERION)."""
    d = np.array([d_of_n[n] for n in window], dtype=float)
    change = d[-1] - d[0]
    steps = np.diff(d)
    crit = {
        "change": float(change),
        "grows": bool(change > 0.1 * max(d[0], d[-1], 1e-300)),
        "monotone": bool(np.all(steps * np.sign(change) >= -0.1 * abs(change))) if change != 0 else False,
        "largest_step_share": float(np.max(np.abs(steps)) / abs(change)) if change != 0 else float("inf"),
    }
    crit["gradual"] = crit["largest_step_share"] <= 0.5
    ok = crit["grows"] and crit["monotone"] and crit["gradual"]
    return ("confirmed" if ok else "refuted"), crit


def _regimes(memo_json: Path, quick: bool) -> tuple[dict, float]:
    """Result 2's regime label per (N, t) at the primary budget, and its pixel threshold.

    Quick mode (the pipeline only) has neither: no regime gate and delta = 1. A full run needs
    Result 2's outputs; without them it stops rather than pass the regime gate vacuously."""
    if quick:
        return {}, 1.0
    if not memo_json.is_file():
        raise SystemExit(f"{memo_json} not found: run validation/network_memorization.py first (its regime map gates)")
    d = json.loads(memo_json.read_text())
    reg = {}
    for r in d["results"]:
        if r["budget"] == d["budget_steps"]:
            reg[r["N"]] = dict(zip(r["regime"]["t"], r["regime"]["regime"]))
    return reg, float(d["thresholds"]["delta_pixels"])


def plot(out: Path, results: dict, twins: dict, trust: dict, t_star, summary: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(results)
    times = sorted(trust)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for j, t in enumerate(times):
        style = "-" if trust[t]["trusted"] else "--"
        ax[0].plot(ns, [_median_train(results[n], t) for n in ns], style, marker="o", ms=3, color=f"C{j}",
                   label=f"t = {t:g}" + ("" if trust[t]["trusted"] else " (not trusted)"))  # fmt: skip
    _driver.style(ax[0], xlabel="N training images", ylabel="dimension at training points (level 1/2, median)",
                  title="Tangent dimension at training points", xlog=True)  # fmt: skip
    t_show = t_star if t_star is not None else times[0]
    for j, k in enumerate(("train", *CATEGORIES)):
        med = []
        for n in ns:
            v = [r["dim_0.5"] for r in results[n]["rows"] if r["kind"] == k and r["t"] == t_show]
            med.append(float(np.median(v)) if v else np.nan)
        ax[1].plot(ns, med, marker="os^v"[j], ms=4, label=k)
    title = f"By point kind at t = {t_show:g}" + ("" if t_star is not None else " (not trusted)")
    _driver.style(ax[1], xlabel="N training images", ylabel="dimension (level 1/2, median)", title=title, xlog=True)
    for p in TWINS:
        ax[2].plot(times, [_median_train(twins[p], t) for t in times], marker="o", ms=3, label=p)
    _driver.style(ax[2], xlabel="t (DDPM linear steps)", ylabel="dimension at training points (median)",
                  title=f"Twins at N = {summary['twin_N']}: trust within 10%", xlog=True)  # fmt: skip
    for a in ax[:2]:
        a.set_xticks(ns, [str(n) for n in ns])
        a.minorticks_off()
    ax[2].set_xticks(times, [f"{t:g}" for t in times])
    ax[2].minorticks_off()
    _driver.save_figure(fig, out / f"{name}.png", f"Manifold dimension of the networks: {summary['verdict']}")


def main(argv=None):
    p = _networks.parser(__doc__, "two tiny N at 8 x 8, 30 steps: checks the pipeline, not the science")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    t0 = time.time()
    from statphys_diffusion import datasets

    data = args.data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    data = str(data)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick
    m = _networks.MEMORIZATION
    spec = dict(m["train"], batch_size=QUICK["batch_size"]) if q else dict(m["train"])
    sz = QUICK_SIZES if q else FULL_SIZES
    ns, twin_n, times = sz.ns, sz.twin_n, sz.times
    regimes, delta = _regimes(out / "network_memorization.json", q)
    base = {
        "runs": str(runs / ("memorization-quick" if q else "memorization")),
        "data": data,
        "spec": spec,
        "size": QUICK["size"] if q else m["size"],
        "steps": QUICK["steps"] if q else m["budgets"][0],
        "times": list(times),
        "n_train_points": sz.n_train_points,
        "n_per_category": sz.n_per_category,
        "n_samples": sz.n_samples,
        "delta_pixels": delta,
        "threads": 1,
    }
    cfgs = [dict(base, N=n, prediction="edm", with_samples=True) for n in ns]
    cfgs += [dict(base, N=twin_n, prediction=pr, with_samples=False) for pr in TWINS[1:]]
    cache = runs / ("network_dimension-quick" if q else "network_dimension") / "jobs"
    res = sd.run_sweep(job, cfgs, cache_dir=cache, workers=args.workers, desc="dimension jobs")
    results = {r["N"]: r for r in res if r["prediction"] == "edm"}
    twins = {"edm": results[twin_n], **{r["prediction"]: r for r in res if r["prediction"] != "edm"}}
    trust = trusted_times(twins, {} if q else {n: regimes.get(n, {}) for n in ns}, times)
    trusted = [t for t in times if trust[t]["trusted"]]
    t_star = min(trusted) if trusted else None
    window = ns if sz.window is None else sz.window
    if t_star is None:
        verdict_, crit = "not testable with these networks", {}
    else:
        verdict_, crit = verdict({n: _median_train(results[n], t_star) for n in window}, window)
    name = "network_dimension_quick" if q else "network_dimension"
    rows = [dict(N=r["N"], prediction=r["prediction"], **row) for r in res for row in r["rows"]]
    write_rows_csv(out / f"{name}.csv", rows)
    summary = {
        "quick": q,
        "criterion": CRITERION,
        "twin_N": twin_n,
        "times": list(times),
        "trust": {str(t): v for t, v in trust.items()},
        "trusted_times": trusted,
        "t_star": t_star,
        "D_train_at_t_star": {n: _median_train(results[n], t_star) for n in ns} if t_star is not None else {},
        "criteria": crit,
        "verdict": verdict_,
        "sample_fractions": {n: results[n]["fractions"] for n in ns},
        "seconds": time.time() - t0,
        "job_seconds": float(sum(r["seconds"] for r in res)),  # the measurement's cost, also when cached
    }
    config = {k: v for k, v in base.items() if k not in ("runs", "data")}  # in the provenance block only
    summary["provenance"] = ex.provenance(dict(config, sizes=sz), None, summary["seconds"])
    _driver.dump_json(out / f"{name}.json", summary, echo=True)
    plot(out, results, twins, trust, t_star, summary, name)
    return rows, summary


if __name__ == "__main__":
    main()
