"""Result 4 redone in the paper's synthetic setting (issue 34): N = 250 and 500 at the paper's 2M steps.

Pre-registration: ``validation/preregistrations/geometric_order.md``. The committed synthetic row
(``geometric_synthetic.py``, 200,000 steps) failed its convergence gate, and that gate was misaimed:
the fully converged network is the exact empirical model, so "converged" cannot show a claim about
the paper's budget. Here the networks of ``geometric_synthetic`` (the same data, TabularResNet,
VE process, eps objective, batch 128, lr 1e-4, EMA 0.9999) are trained for 2,000,000 steps at N = 250
and N = 500, one core each, resumable from a checkpoint every 10,000 steps; the EMA weights at step
1,000,000 are kept by the training callback (``snapshot-1000000.pt`` beside the checkpoint). The gate
is order stability: at 1M and 2M steps the same loss order of the two blocks, and each block's loss
sigma within 20%.

The training outlasts one session: between sessions each N's checkpoint (and the 1M snapshot once it
exists) is copied into the tracked folder ``validation/checkpoints/geometric_order/`` (``--carry-out``)
and committed; on a fresh clone the training copies it back into ``runs/`` before it resumes (a
carried checkpoint replaces the run's only if it is further along).

Usage: python validation/geometric_order.py [--quick] [--workers 2]
       python validation/geometric_order.py --status      (training progress of each N, from its checkpoint)
       python validation/geometric_order.py --carry-out   (copy the checkpoints into the tracked folder)
       python validation/geometric_order.py --reference-check
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
import geometric_synthetic as gs  # noqa: E402
from _driver import save_figure  # noqa: E402

import statphys_diffusion as sd  # noqa: E402

NAME = "geometric_order"
JOBS = ex.ROOT / "validation" / "jobs" / NAME
CARRY = ex.ROOT / "validation" / "checkpoints" / NAME  # committed copies of the checkpoints (docstring)
SIGMA_TOL = 0.20  # relative: each block's loss sigma at 1M and 2M steps
TIE = 0.20  # relative: blocks lost within this of each other are lost together ("tied")


@dataclass(frozen=True)
class Config:
    mode: str
    ns: tuple
    steps: int
    snapshot: int  # the gate's earlier budget
    n_times: int
    n_queries: int
    ema_decay: float


FULL = Config("full", (250, 500), 2_000_000, 1_000_000, 100, 16, 0.9999)
QUICK = Config("quick", (250,), 200, 100, 4, 2, 0.99)


def _train_config(cfg: Config):
    from statphys_diffusion import nets

    return nets.TrainConfig(steps=cfg.steps, batch_size=128, lr=1e-4, ema_decay=cfg.ema_decay, grad_clip=0.0,
                            noise="logsnr", t_eps=gs.SIGMA_MIN, seed=0,
                            checkpoint_every=min(10_000, cfg.snapshot))  # fmt: skip


def run_dir(cfg: Config, n: int, runs: Path) -> Path:
    tc = _train_config(cfg)
    key = {"N": int(n), "net": "TabularResNet(30)", "train": tc.key(), "data": "achilli-spectrum-v1"}
    return runs / NAME / f"net-{sd.config_hash(key)}"


def _snapshot_path(cfg: Config, n: int, runs: Path) -> Path:
    return run_dir(cfg, n, runs) / f"snapshot-{cfg.snapshot}.pt"


def _steps(path: Path) -> int:
    """Steps done by the checkpoint at ``path`` (0 if there is none)."""
    from statphys_diffusion.nets.train import load_checkpoint

    return int(load_checkpoint(path).get("step", -1)) if path.is_file() else 0


def _copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (the package's per-process temporary file, then a rename)."""
    import shutil

    from statphys_diffusion._io import temporary_name

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dst)
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def carry(cfg: Config, n: int, runs: Path, *, out: bool) -> int:
    """Copy N's checkpoint and snapshot between ``runs`` and the tracked :data:`CARRY` folder: ``out`` into
    it, else back from it. Only a checkpoint further along replaces one; a snapshot is copied only where
    it is missing. Returns the steps of the checkpoint at the destination."""
    here, there = run_dir(cfg, n, runs), run_dir(cfg, n, CARRY.parent)
    src, dst = (here, there) if out else (there, here)
    steps_src, steps_dst = _steps(src / "checkpoint.pt"), _steps(dst / "checkpoint.pt")
    if steps_src > steps_dst:
        _copy(src / "checkpoint.pt", dst / "checkpoint.pt")
        steps_dst = steps_src
    snap = _snapshot_path(cfg, n, runs).name
    if (src / snap).is_file() and not (dst / snap).is_file():
        _copy(src / snap, dst / snap)
    return steps_dst


def train(cfg: Config, n: int, runs: Path, threads: int = 1):
    """Train (or resume) N's network to ``cfg.steps``; the EMA weights at ``cfg.snapshot`` are written
    once, atomically, by the callback. Returns (EMA network at the snapshot, final EMA network, mean loss
    of the last 1,000 steps)."""
    import torch

    from statphys_diffusion import nets

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nets.TabularResNet(gs.D)
    path = run_dir(cfg, n, runs) / "checkpoint.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.mode == "full":
        carry(cfg, n, runs, out=False)  # a fresh clone resumes from the committed checkpoint
    snap = _snapshot_path(cfg, n, runs)

    def keep(step, _net, ema):  # step: the number of steps done
        if step == cfg.snapshot and not snap.is_file():
            tmp = snap.with_suffix(".tmp")
            torch.save({k: v.detach().clone() for k, v in ema.state_dict().items()}, tmp)
            tmp.replace(snap)  # atomic: a killed run leaves no half-written snapshot

    res = nets.train(net, gs.training_points(n), gs.schedule(), _train_config(cfg), checkpoint=path, progress=False,
                     callback=keep)  # fmt: skip
    if not snap.is_file():
        raise RuntimeError(f"{snap} was not written: the run passed step {cfg.snapshot} without the callback")
    early = nets.TabularResNet(gs.D)
    early.load_state_dict(torch.load(snap, weights_only=True))
    return early, res.ema, float(np.mean(res.losses[-1000:]))


def job(job: dict) -> dict:
    """One N: train (resumable), then measure the snapshot and the final network as geometric_synthetic does."""
    from statphys_diffusion import nets

    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["config"].items()})
    t0 = time.time()
    n = int(job["N"])
    early, final, loss = train(cfg, n, Path(job["runs"]), int(job.get("threads", 1)))
    q = {"N": n, "variances": gs.coordinate_variances().tolist(), "n_times": cfg.n_times, "n_queries": cfg.n_queries}
    out = {"N": n, "final_loss": loss}
    for label, ema in (("snapshot", early), ("final", final)):
        lam, times, rng, sets = gs._queries(q)  # the same queries and noise for both budgets
        res = {"times": times.tolist()}
        gs._measure_model(res, "network", nets.TorchScoreModel(ema.double(), gs.schedule()), sets, times, lam, rng, 0)
        out[label] = res
    lam, times, rng, sets = gs._queries(q)
    exact = {"times": times.tolist()}
    gs._measure_model({}, "network", sd.EmpiricalDistribution(gs.training_points(n), schedule=gs.schedule()), sets,
                      times, lam, rng, 0)  # fmt: skip
    gs._measure_model(exact, "empirical", sd.EmpiricalDistribution(gs.training_points(n), schedule=gs.schedule()),
                      sets, times, lam, rng, 0)  # fmt: skip
    gs._predicted(exact, n, lam, times, gs.schedule())
    out["exact"] = exact
    out["seconds"] = time.time() - t0
    return out


def loss_sigmas(res: dict, source: str = "network_train") -> dict:
    return {b: gs.restricted_loss_time(res, source, b) for b in gs.BLOCKS}


def order(res: dict, source: str = "network_train") -> str:
    """'std1 first', 'std0.3 first', 'tied' (loss sigmas within TIE of each other) or 'none lost'."""
    s = loss_sigmas(res, source)
    a, b = s["std1"], s["std0.3"]
    if a == 0 and b == 0:
        return "none lost"
    if abs(a - b) <= TIE * max(a, b):
        return "tied"
    return "std1 first" if a > b else "std0.3 first"


def gate(snapshot: dict, final: dict) -> dict:
    """Order stability between the two budgets: the same order, each block's loss sigma within 20%."""
    o1, o2 = order(snapshot), order(final)
    s1, s2 = loss_sigmas(snapshot), loss_sigmas(final)
    close = {b: bool((s1[b] == 0 and s2[b] == 0) or abs(s2[b] - s1[b]) <= SIGMA_TOL * max(s1[b], s2[b]))
             for b in gs.BLOCKS}  # fmt: skip
    return {"order_1M": o1, "order_2M": o2, "loss_sigma_1M": s1, "loss_sigma_2M": s2, "sigma_within_20pct": close,
            "passes": bool(o1 == o2 and all(close.values()))}  # fmt: skip


def decide(orders: dict) -> tuple[str, str]:
    """The claim ("the std-1 block is lost first") on the 2M networks' orders at N = 250 and 500."""
    vals = list(orders.values())
    if all(o == "std1 first" for o in vals):
        return "confirmed", f"std-1 block lost first at every N: {orders}"
    if all(o == "std0.3 first" for o in vals):
        return "refuted", f"std-0.3 block lost first at every N: {orders}"
    return "partly", f"mixed orders, blocks lost together or nothing lost: {orders}"


def reference_check(out: Path) -> dict:
    """The exact empirical model of each N (the converged limit) and the annealed prediction through the same
    loss-time reading, the gate (trivially stable: the same model at both budgets) and the rule on their orders."""
    cfg = FULL
    report = {}
    for n in cfg.ns:
        q = {"N": n, "steps": cfg.steps, "variances": gs.coordinate_variances().tolist(), "n_times": cfg.n_times,
             "n_queries": cfg.n_queries}  # fmt: skip
        r = gs.exact_job(q)
        as_network = {
            "times": r["times"],
            **{f"network_train_{b}_rho": r[f"empirical_train_{b}_rho"] for b in gs.BLOCKS},
        }
        report[str(n)] = {
            "empirical_order": order(r, "empirical_train"),
            "predicted_order": order(r, "predicted"),
            "empirical_loss_sigma": loss_sigmas(r, "empirical_train"),
            "gate_on_the_exact_model": gate(as_network, as_network),
        }
    report["rule_on_the_exact_orders"] = decide({n: v["empirical_order"] for n, v in report.items()})
    report["rule_on_the_predicted_orders"] = decide({n: v["predicted_order"] for n, v in report.items()
                                                     if isinstance(v, dict)})  # fmt: skip
    ex.write_json(out, report)
    print(report)
    return report


def status(cfg: Config, runs: Path) -> dict:
    """Steps done per N, read from each checkpoint (for the session notes)."""
    out = {}
    for n in cfg.ns:
        step = _steps(run_dir(cfg, n, runs) / "checkpoint.pt")
        carried = _steps(run_dir(cfg, n, CARRY.parent) / "checkpoint.pt")
        out[n] = {"steps_done": step, "committed_copy": carried, "of": cfg.steps,
                  "snapshot_written": _snapshot_path(cfg, n, runs).is_file()}  # fmt: skip
    print(out)
    return out


def run(cfg: Config, runs: Path, cache, out: Path, workers: int, progress: bool) -> dict:
    _, digest = ex.preregistration(NAME, require_committed=cfg.mode != "quick")
    timer = ex.Timer()
    jobs = [{"config": dataclasses.asdict(cfg), "N": n, "runs": str(runs), "threads": 1 if workers > 1 else 2}
            for n in cfg.ns]  # fmt: skip
    res = sd.run_sweep(job, jobs, cache_dir=cache, workers=workers, progress=progress, desc=NAME)
    gates = {str(r["N"]): gate(r["snapshot"], r["final"]) for r in res}
    orders = {str(r["N"]): order(r["final"]) for r in res}
    if not all(g["passes"] for g in gates.values()):
        v = ex.Verdict("not testable", f"order not stable between 1M and 2M steps: {gates}", 1.0, 0)
    else:
        outcome, reason = decide(orders)
        v = ex.Verdict(outcome, reason, 1.0, 0)  # loss times are deterministic given the networks
    summary = {
        "criterion": PREDICTION,
        "gates": gates,
        "orders_2M": orders,
        "exact_orders": {
            str(r["N"]): {s: order(r["exact"], s) for s in ("empirical_train", "predicted")} for r in res
        },  # fmt: skip
        "final_loss": {str(r["N"]): r["final_loss"] for r in res},
        "verdict": v.to_dict(),
        "provenance": ex.provenance(cfg, digest, timer.seconds),
    }
    tag = "_quick" if cfg.mode == "quick" else ""
    rows = []
    for r in res:
        for label in ("snapshot", "final"):
            for i, t in enumerate(r[label]["times"]):
                row = {"N": r["N"], "budget": cfg.snapshot if label == "snapshot" else cfg.steps, "sigma": t}
                for b in gs.BLOCKS:
                    row[b] = r[label][f"network_train_{b}_rho"][i]
                    row[f"empirical_{b}"] = r["exact"][f"empirical_train_{b}_rho"][i]
                rows.append(row)
    from statphys_diffusion._io import write_rows_csv

    out.mkdir(parents=True, exist_ok=True)
    write_rows_csv(out / f"{NAME}{tag}.csv", rows)
    ex.write_json(out / f"{NAME}{tag}.json", summary)
    _plot(res, cfg, summary, out / f"{NAME}{tag}.png")
    return summary


PREDICTION = (
    "Pre-registered (validation/preregistrations/geometric_order.md): gate, at N = 250 and 500 the network at 1M "
    "and 2M steps has the same block loss order and each block's loss sigma (largest sigma <= 1 with rho_b < 1/2) "
    "within 20%; confirmed if the std-1 block is lost first (larger sigma) at both N at 2M steps, refuted if the "
    "std-0.3 block is lost first at both, partly otherwise."
)


def _plot(res: list[dict], cfg: Config, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res), figsize=(5 * len(res), 3.4), squeeze=False)
    for ax, r in zip(axes[0], res):
        for b, colour in zip(gs.BLOCKS, ("C0", "C1")):
            ax.plot(r["snapshot"]["times"], r["snapshot"][f"network_train_{b}_rho"], "--", color=colour,
                    label=f"network {cfg.snapshot:,} steps, {b}")  # fmt: skip
            ax.plot(r["final"]["times"], r["final"][f"network_train_{b}_rho"], "-", color=colour,
                    label=f"network {cfg.steps:,} steps, {b}")  # fmt: skip
            ax.plot(r["exact"]["times"], r["exact"][f"empirical_train_{b}_rho"], ":", color=colour,
                    label=f"exact empirical, {b}")  # fmt: skip
        ax.axhline(0.5, color="0.6", lw=0.8)
        ax.axvline(gs.GATE_SIGMA, color="0.6", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("sigma (VE)")
        ax.set_ylabel("retained fraction rho_b at training points")
        ax.set_title(f"N = {r['N']}", fontsize=9)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"which block is lost first: {summary['verdict']['outcome']}", fontsize=9)
    save_figure(fig, path)


def main(argv=None):
    p = ex.parser(__doc__, "a few hundred steps: the pipeline only", data=False)
    p.add_argument("--status", action="store_true", help="training progress per N")
    p.add_argument("--workers", type=int, default=2, help="processes (one N each, one torch thread each)")
    p.add_argument("--carry-out", action="store_true", help="copy the checkpoints into validation/checkpoints/")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    runs = ex.ROOT / args.runs
    if args.status:
        return status(cfg, runs)
    if args.carry_out:
        done = {n: carry(cfg, n, runs, out=True) for n in cfg.ns}
        print(f"{CARRY}: steps {done}")
        return done
    if args.reference_check:
        return reference_check(ex.PREREGISTRATIONS / f"{NAME}_reference_check.json")
    cache, out = ex.destinations(args, JOBS)
    return run(cfg, runs, cache, out, args.workers, args.progress)


if __name__ == "__main__":
    main()
