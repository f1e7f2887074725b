"""Independent jobs of a sweep (over N, seeds, guidance scales) on local processes or a Dask cluster.

A sweep is a function ``fn(config) -> result`` and a list of configurations
(dicts of JSON-serialisable values). :func:`run_sweep` runs them

* in this process (``workers=1``, the default: simplest, and what torch
  training on a small machine wants),
* on a local process pool (``workers > 1``; ``fn`` must be importable, i.e.
  defined at module level),
* on a Dask distributed cluster when ``scheduler`` is given (an address such as
  ``"tcp://10.0.0.1:8786"`` or a ``distributed.Client``); the workers need the
  package installed, and ``fn`` must be importable on them.

With ``cache_dir`` each finished job's result is written atomically as
``<cache_dir>/<config_hash>.json`` and a rerun loads it instead of recomputing,
so a killed sweep resumes where it stopped; results must then be
JSON-serialisable. Results come back in the order of ``configs``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ._io import atomic_write_text

__all__ = ["config_hash", "run_sweep"]


def _canonical(config) -> str:
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must be JSON-serialisable (dicts, lists, str, finite numbers): {exc}") from None


def config_hash(config) -> str:
    """First 16 hex digits of the SHA-1 of the configuration's canonical JSON (sorted keys)."""
    return hashlib.sha1(_canonical(config).encode()).hexdigest()[:16]


def _client(scheduler):
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("a Dask scheduler needs the optional extra: pip install 'dask[distributed]'") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str):
        raise ValueError(f"scheduler must be an address string or a distributed.Client, got {type(scheduler).__name__}")
    return Client(scheduler), True


def run_sweep(
    fn: Callable,
    configs: Sequence[dict],
    *,
    cache_dir=None,
    scheduler=None,
    workers: int = 1,
    progress: bool = True,
    desc: str = "sweep",
) -> list:
    """Run ``fn(config)`` for every configuration; see the module docstring.

    Parameters
    ----------
    fn : callable(config) -> result
    configs : sequence of dict
    cache_dir : path, optional
        One JSON file per finished job, keyed by :func:`config_hash`; reruns load them.
    scheduler : str or distributed.Client, optional
        Run on this Dask cluster instead of locally.
    workers : int
        Local processes (ignored with ``scheduler``); 1 runs in this process.
    progress : bool
        tqdm bar over finished jobs.

    Returns
    -------
    list of results, in the order of ``configs``.
    """
    if not callable(fn):
        raise ValueError("fn must be callable")
    configs = list(configs)
    keys = [config_hash(c) for c in configs]
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    cache = Path(cache_dir) if cache_dir is not None else None
    results: list = [None] * len(configs)
    todo = []
    for i, key in enumerate(keys):
        path = cache / f"{key}.json" if cache is not None else None
        if path is not None and path.is_file():
            results[i] = json.loads(path.read_text())["result"]
        else:
            todo.append(i)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc, disable=not progress)

    def done(i, res):
        results[i] = res
        if cache is not None:
            payload = {"config": configs[i], "result": res}
            atomic_write_text(cache / f"{keys[i]}.json", json.dumps(payload, indent=1, allow_nan=True))
        bar.update(1)

    try:
        if not todo:
            pass
        elif scheduler is not None:
            from distributed import as_completed

            client, owned = _client(scheduler)
            try:
                futures = {client.submit(fn, configs[i], key=f"sweep-{keys[i]}", pure=False): i for i in todo}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
            finally:
                if owned:
                    client.close()
        elif workers == 1:
            for i in todo:
                done(i, fn(configs[i]))
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=int(workers)) as pool:
                futures = {pool.submit(fn, configs[i]): i for i in todo}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
    finally:
        bar.close()
    return results
