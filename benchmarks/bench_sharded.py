"""The sharded empirical model against the in-memory kernel, same machine, same run; and a plan for ImageNet-64.

CIFAR-10 scale: N = 50,000 points, d = 3,072, float32, M = 256 queries, the score at t = 0.5 (OU):

(a) the in-memory ``EmpiricalDistribution`` (the numba kernel on all cores): the baseline;
(b) ``ShardedEmpirical`` of 4 shard files in this process: the cost of the merge (a log-sum-exp over
    shards and a weighted sum of 4 denoisers) as a ratio to (a);
(c) the same shards on a Dask ``LocalCluster`` of 2 worker processes with 1 thread each (numba and
    BLAS pinned to 1 thread per worker, so the cores are not oversubscribed): the ratio to (a), which
    adds the transfer of x and of the denoisers and the scheduling; and each worker's resident memory
    after building its shards, against the size of the shards it holds (the claim: a worker holds its
    shards plus O(M d)).

From the measured rate of one worker (flops of the kernel, 4 M N d, per second of (c)'s per-shard
time) the script prints a plan for the empirical model of ImageNet at 64 x 64 (N = 1.28M, d = 12,288:
63 GB in float32): shards per worker memory, and the time of one query batch on S workers.

Usage: python benchmarks/bench_sharded.py [--quick] [--repeat 3] [--out benchmarks/results/sharded.csv]
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from pathlib import Path

import numpy as np

import statphys_diffusion as sd
from statphys_diffusion import _bench


def _best(fn, repeat: int) -> float:
    return _bench.best_of(fn, repeat, warm_up=True)[0]


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main(argv=None) -> list[dict]:
    args = _bench.parser(__doc__, Path(__file__).parent / "results" / "sharded.csv", "N = 4,000, d = 256").parse_args(
        argv
    )
    from distributed import Client, LocalCluster

    n, d, m = (4000, 256, 64) if args.quick else (50_000, 3072, 256)
    n_shards, t = 4, 0.5
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    # noised training points at t (OU: alpha = e^-t, sigma^2 = 1 - e^-2t)
    x = (y[rng.integers(0, n, m)] * np.exp(-t) + np.sqrt(1 - np.exp(-2 * t)) * rng.standard_normal((m, d))).astype(
        np.float32
    )
    folder = Path(tempfile.mkdtemp()) / "shards"
    sd.write_shards(y, folder, n_shards)
    shard_mib = y.nbytes / n_shards / 2**20
    rows = []

    memory = sd.EmpiricalDistribution(y)
    t_mem = _best(functools.partial(memory.score, x, t), args.repeat)
    ref = memory.score(x, t)
    rows.append({"mode": "in memory", "workers": 1, "seconds": t_mem, "ratio_to_in_memory": 1.0})
    local = sd.ShardedEmpirical.from_directory(folder)
    t_loc = _best(functools.partial(local.score, x, t), args.repeat)
    rows.append({"mode": "sharded, this process", "workers": 1, "seconds": t_loc, "ratio_to_in_memory": t_loc / t_mem,
                 "max_abs_diff": float(np.abs(local.score(x, t) - ref).max())})  # fmt: skip
    del local
    one = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=one) as cluster:
        with Client(cluster) as client:
            client.run(_warm_up)  # imports and numba compilation: not the shard's memory
            before = client.run(_rss_mib)
            dist = sd.ShardedEmpirical.from_directory(folder, client=client)
            t_dist = _best(functools.partial(dist.score, x, t), args.repeat)
            after = client.run(_rss_mib)
            held = {w: sum("_build" in str(k) for k in v) for w, v in client.has_what().items()}
            diff = float(np.abs(dist.score(x, t) - ref).max())
            # one shard on one worker alone: the per-worker kernel rate for the plan
            t_one = _best(lambda: client.submit(_one_shard, dist._futures[0], x, t, pure=False).result(), args.repeat)
    grown = {w: after[w] - before[w] for w in after}
    rows.append({"mode": "sharded, Dask LocalCluster", "workers": 2, "seconds": t_dist,
                 "ratio_to_in_memory": t_dist / t_mem, "max_abs_diff": diff,
                 "worker_growth_mib_max": max(grown.values()), "shard_mib": shard_mib,
                 "shards_per_worker_max": max(held.values())})  # fmt: skip
    flops_one = 4.0 * m * (n / n_shards) * d
    rate = flops_one / t_one  # one worker, one thread
    rows.append({"mode": "one shard on one worker (1 thread)", "workers": 1, "seconds": t_one,
                 "gflops_per_worker": rate / 1e9})  # fmt: skip
    for r in rows:
        r.update(N=n, d=d, M=m, cpus=os.cpu_count())
    _bench.write_table(rows, args.out, tag="mode")
    # a worker's memory per byte of float32 shard it holds (the shard's model keeps its float32 points as its
    # one copy; float32 queries make no float64 copy): about 1, plus the queries and answers, O(M d)
    factor = max(grown.values()) / (shard_mib * max(1, max(held.values())))
    plan(rate, memory_factor=factor)
    return rows


def _warm_up() -> None:
    """A worker's imports and the float32 kernels compiled, on a model of 64 points."""
    y = np.random.default_rng(0).standard_normal((64, 300)).astype(np.float32)
    sd.EmpiricalDistribution(y).log_prob(y[:4], 0.5)
    sd.EmpiricalDistribution(y).denoise(y[:4], 0.5)


def _one_shard(model, x, t):
    return model.log_prob(x, t), model.denoise(x, t)


def plan(rate_per_worker: float, *, memory_factor: float, worker_gib: float = 64.0, m: int = 256) -> dict:
    """ImageNet-64's empirical model on a cluster, from a measured per-worker kernel rate (flops/s) and the
    measured worker memory per byte of float32 shard."""
    n, d = 1_281_167, 64 * 64 * 3
    total_gib = n * d * 4 / 2**30
    usable = 0.75 * worker_gib / memory_factor  # float32 shard a worker can hold in three quarters of its memory
    shards = math.ceil(total_gib / usable)
    per_batch = 4.0 * m * n * d / (shards * rate_per_worker)
    out = {"N": n, "d": d, "float32_gib": total_gib, "worker_gib": worker_gib, "workers": shards,
           "shard_gib": total_gib / shards, "memory_factor": memory_factor, "query_batch": m,
           "seconds_per_batch": per_batch, "rate_per_worker_gflops": rate_per_worker / 1e9}  # fmt: skip
    print(
        f"ImageNet-64 plan: {total_gib:.0f} GiB in float32 -> {shards} workers of {worker_gib:g} GiB "
        f"({total_gib / shards:.1f} GiB of shard each, {memory_factor:.1f}x that in worker memory); one batch "
        f"of {m} queries: about {per_batch:.1f} s at "
        f"{rate_per_worker / 1e9:.0f} GFLOP/s per worker (this machine's single-thread rate; a worker "
        f"with more cores scales it)"
    )
    return out


if __name__ == "__main__":
    main()
