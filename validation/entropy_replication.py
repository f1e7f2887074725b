"""Result 1 replicated on new classes (issue 34): the reference check and the network's training.

Pre-registration (draft until this script's reference check is committed):
``validation/preregistrations/entropy_replication.md``. Classes {automobile, truck} (vehicles) and
{cat, dog} (animals) of CIFAR-10 at 16 x 16; the ``small`` class-conditional UNet with the committed
R1 network's objective (EDM preconditioning, log-normal noise, label dropout 0.2) trained from
scratch with a fresh seed for 47,000 steps of batch 64 (3.0M images).

Modes:

* ``--reference-check`` (before registration): the exact class-Gaussian mixture of the 20,000
  training images (``seeds`` independent Monte Carlo runs) and their exact empirical model, on the
  four decision problems of ``network_entropy.py`` (Y, the superclass S, and each fine pair given S),
  by the same cached jobs; the evaluation classifier's 4-class accuracy on these classes' test
  images; and the power rule: chains per class so that the reference's largest class-peak separation
  is at least 3 combined standard errors. Writes
  ``preregistrations/entropy_replication_reference_check.json``.
* ``--train-only``: train (or resume) the network, checkpointed every 250 steps, and export its
  float16 weights to ``weights/`` when finished. Refuses while the pre-registration is a draft or
  uncommitted.

The measurement on the network (the joint estimator at 250 and 1,000 steps, the gates, the criteria
and the verdict) is added once the pre-registration is registered.

Usage: python validation/entropy_replication.py --reference-check [--progress]
       python validation/entropy_replication.py --train-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _experiment as ex  # noqa: E402
import _networks  # noqa: E402
import network_entropy as ne  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "entropy_replication"
CLASSES = ("automobile", "truck", "cat", "dog")
SUPERCLASSES = {"vehicle": ("automobile", "truck"), "animal": ("cat", "dog")}
# the committed R1 network's objective, from scratch, a fresh seed, the 3.0M-image budget
NETWORK = dict(
    _networks.FOUR,
    classes=CLASSES,
    train=dict(_networks.FOUR["train"], steps=47_000, seed=2),
)


@dataclass(frozen=True)
class Config:
    """The reference check's sizes (the pre-registration states them)."""

    mode: str
    n_times: int  # grid t = 2 to 990, geometric
    n_class_gaussian: int  # Monte Carlo draws per exact class-Gaussian job
    n_empirical: int
    seeds: int  # independent class-Gaussian runs (the seed spread of every predicted peak)
    n_bootstrap: int
    separation_z: float  # the power rule's target separation, in combined standard errors


FULL = Config("full", 36, 1500, 4000, 3, 200, 3.0)
QUICK = Config("quick", 8, 60, 60, 2, 20, 3.0)

# gate G2's estimator: the marginal class posterior from probability-flow log-likelihoods of the conditional
# heads (sd.flow_log_likelihood), checked here on the exact class-Gaussian, where the posterior is exact
FLOW = {"times": (150.0, 300.0, 500.0), "n_points": 16, "n_probes": 16, "n_steps": 60}
FLOW_QUICK = {"times": (300.0,), "n_points": 2, "n_probes": 2, "n_steps": 4}


def network_config(data, runs) -> dict:
    return dict(NETWORK, data=str(data), runs=str(runs))


def _exact_jobs(cfg: Config, net: dict) -> list[dict]:
    ts = np.geomspace(2.0, 990.0, cfg.n_times).tolist()
    jobs = []
    for seed in range(cfg.seeds):
        for i, prob in enumerate(ne.PROBLEMS):
            jobs.append({"kind": "exact", "reference": "class_gaussian", "problem": prob, "times": ts,
                         "n": cfg.n_class_gaussian, "seed": 100 * seed + 10 + i, "net": net,
                         "n_bootstrap": cfg.n_bootstrap})  # fmt: skip
    for i, prob in enumerate(ne.PROBLEMS):
        jobs.append({"kind": "exact", "reference": "empirical", "problem": prob, "times": ts, "n": cfg.n_empirical,
                     "seed": 10 + i, "net": net, "n_bootstrap": cfg.n_bootstrap})  # fmt: skip
    return jobs


def classifier_accuracy(net: dict) -> float:
    """The evaluation classifier's accuracy among the four classes on their 4,000 test images."""
    from statphys_diffusion import datasets

    test = datasets.load_cifar10(net["data"], "test", classes=net["classes"], size=net["size"], progress=False)
    meta = {"in_channels": 3, "size": net["size"]}
    pred = ne._classify(net, meta, _networks.flat_points(test.images))
    return float(np.mean(pred == test.labels))


def flow_precision(net: dict, spec: dict, seed: int = 0) -> dict:
    """How well G2's marginal-posterior estimator recovers H(Y | x_t) where it is known: on the exact
    class-Gaussian of the training set, draws x_t at each time, the class posterior from the flow
    log-likelihood of each class's conditional model against the exact one; mean and largest |Delta H| per
    point, and the difference of the mean entropies (what G2 compares), in nats."""
    x, y = ne._train_points(json.dumps(ne._cfg_of({"net": net}), sort_keys=True))
    gm = sd.GaussianMixture.fit(x, y, schedule=ne._schedule(net))
    rng = np.random.default_rng(seed)

    def entropy(p):
        p = np.clip(p, 1e-300, 1.0)
        return -(p * np.log(p)).sum(axis=1)

    out = []
    for t in spec["times"]:
        d = gm.sample(spec["n_points"], t, rng=rng)
        ll = np.stack(
            [sd.flow_log_likelihood(gm, d.x, t, y=c, n_steps=spec["n_steps"], n_probes=spec["n_probes"], rng=seed + 1)
             for c in range(len(gm.classes))], axis=1,
        )  # fmt: skip
        lw = ll + np.log(gm.class_weights)[None]
        post = np.exp(lw - lw.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        h_flow, h_exact = entropy(post), entropy(gm.class_posterior(d.x, t))
        out.append({"t": t, "H_exact_mean": float(h_exact.mean()), "H_flow_mean": float(h_flow.mean()),
                    "mean_abs_dH": float(np.abs(h_flow - h_exact).mean()),
                    "max_abs_dH": float(np.abs(h_flow - h_exact).max()),
                    "dH_of_means": float(h_flow.mean() - h_exact.mean())})  # fmt: skip
    return {"spec": spec, "by_time": out}


def power_rule(per_seed: list[dict], n_draws: int, z: float) -> dict:
    """Chains per class for the network so that the reference's largest class-peak separation reaches ``z``
    combined standard errors, from the reference's per-class peak standard errors at ``n_draws`` draws
    (n_draws / 4 per class) scaled as 1 / sqrt(count)."""
    peaks = np.array([s["class"]["log_snr_peak_time"] for s in per_seed])  # (seeds, 4)
    ses = np.array([s["class"]["log_snr_peak_time_stderr"] for s in per_seed])
    mean_peak, se = peaks.mean(axis=0), np.sqrt((ses**2).mean(axis=0))
    i, j = np.unravel_index(np.argmax(np.abs(mean_peak[:, None] - mean_peak[None, :])), (4, 4))
    sep = float(abs(mean_peak[i] - mean_peak[j]))
    se_pair = float(np.hypot(se[i], se[j]))
    per_class = n_draws / 4.0
    chains = int(np.ceil(per_class * (z * se_pair / sep) ** 2)) if sep > 0 else None
    return {"classes": [CLASSES[i], CLASSES[j]], "separation_t": sep, "stderr_at_reference": se_pair,
            "reference_draws_per_class": per_class, "chains_per_class": chains, "z": z}  # fmt: skip


def reference_check(cfg: Config, data, runs: Path, progress: bool) -> dict:
    from statphys_diffusion import datasets

    data = data or datasets.find_cifar10()
    if data is None:
        raise SystemExit("CIFAR-10 not found: pass --data")
    net = network_config(data, runs)
    jobs = _exact_jobs(cfg, net)
    cache = None if cfg.mode == "quick" else ex.ROOT / "validation" / "jobs" / NAME
    res = sd.run_sweep(ne.job, jobs, cache_dir=cache, progress=progress, desc=f"{NAME} references")
    by_seed: dict = {}
    empirical = {}
    for j, r in zip(jobs, res):
        if j["reference"] == "empirical":
            empirical[j["problem"]] = r
        else:
            by_seed.setdefault(j["seed"] // 100, {})[j["problem"]] = r
    seeds = [by_seed[s] for s in sorted(by_seed)]

    def peaks(problem):
        return [s[problem]["total_log_snr_peak_time"] for s in seeds]

    coarse = np.array(peaks("superclass"))
    fine = {p: np.array(peaks(p)) for p in ("vehicle", "animal")}
    margin = np.minimum(coarse - fine["vehicle"], coarse - fine["animal"])  # > 0: coarse first, in steps
    out = {
        "classes": list(CLASSES),
        "superclasses": SUPERCLASSES,
        "class_gaussian": {
            "total_peak_t": peaks("class"),
            "superclass_peak_t": coarse.tolist(),
            "fine_peak_t": {p: v.tolist() for p, v in fine.items()},
            "coarse_first_margin_t": margin.tolist(),
            "coarse_first_margin_t_mean": float(margin.mean()),
            "coarse_first_margin_t_min": float(margin.min()),
            "class_peak_t": [s["class"]["log_snr_peak_time"] for s in seeds],
            "class_peak_t_stderr": [s["class"]["log_snr_peak_time_stderr"] for s in seeds],
        },
        "empirical": {p: {"total_peak_t": r["total_log_snr_peak_time"]} for p, r in empirical.items()},
        "power": power_rule(seeds, cfg.n_class_gaussian, cfg.separation_z),
        "config": dataclasses.asdict(cfg),
    }
    out["flow_precision"] = flow_precision(net, FLOW_QUICK if cfg.mode == "quick" else FLOW)
    if cfg.mode != "quick":
        out["classifier_accuracy_4_classes"] = classifier_accuracy(net)
    return out


def train(runs: Path, data) -> dict:
    """Train (or resume) the network and export its float16 weights; needs the registered pre-registration."""
    from statphys_diffusion import datasets
    from statphys_diffusion.nets.run import export_weights

    _, digest = ex.preregistration(NAME, require_committed=True)
    if "Status: draft" in (ex.PREREGISTRATIONS / f"{NAME}.md").read_text():
        raise SystemExit(f"{NAME}.md is still a draft: register it (after its reference check) before training")
    from statphys_diffusion.nets import TrainConfig
    from statphys_diffusion.nets.run import cached_run

    data = data or datasets.find_cifar10()
    net = network_config(data, runs)
    tc = TrainConfig(**net["train"])
    # cached_run resumes from the last checkpoint (every 250 steps) and locks the run directory
    kw = _networks._conditional_kwargs(net)
    run = cached_run(net["runs"], data_path=net["data"], progress=True, train_config=tc, **kw)
    info = {"preregistration_sha256": digest, "run": str(run)}
    info["weights"] = str(export_weights(run, _networks.committed_weights(net)))
    print(info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: the pipeline only")
    p.add_argument("--reference-check", action="store_true")
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--runs", default="runs", help="training runs (relative to the repository root)")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None, help="where the reference check's JSON goes (default: beside the file)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    runs = ex.ROOT / args.runs
    if args.train_only:
        return train(runs, args.data)
    if not args.reference_check:
        raise SystemExit("the measurement is added once the pre-registration is registered: --reference-check first")
    cfg = QUICK if args.quick else FULL
    out = reference_check(cfg, args.data, runs, args.progress)
    path = Path(args.out) if args.out else ex.PREREGISTRATIONS / f"{NAME}_reference_check.json"
    ex.write_json(path, out)
    print(json.dumps({k: v for k, v in out.items() if k in ("class_gaussian", "power")}, indent=1, default=str)[:2000])
    return out


if __name__ == "__main__":
    main()
