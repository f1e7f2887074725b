"""Independent jobs of a sweep (over N, seeds, guidance scales) on local processes or a Dask cluster.

A sweep is a function ``fn(config) -> result`` and a list of configurations
(dicts of JSON-serialisable values). :func:`run_sweep` runs them

* in this process (``workers=1``, the default: simplest, and what torch
  training on a small machine wants),
* on a local process pool (``workers > 1``; ``fn`` must be importable, i.e.
  defined at module level, and a script that calls this needs an
  ``if __name__ == "__main__":`` guard). The workers are started with
  ``spawn``, not ``fork``: a forked child of a process that has already run a
  torch (OpenMP) parallel region waits forever on the parent's thread pool.
* on a Dask distributed cluster when ``scheduler`` is given (an address such as
  ``"tcp://10.0.0.1:8786"`` or a ``distributed.Client``); the workers need the
  package installed, and ``fn`` must be importable on them.

With ``cache_dir`` each finished job's result is written atomically as
``<cache_dir>/<key>.json`` and a rerun loads it instead of recomputing, so a
killed sweep resumes where it stopped. The key hashes the function's qualified
name and source code, the package version, the configuration, and the content
(SHA-256) of every existing file a configuration names (any string value, at any
depth, that is the path of a file): two functions, two versions of one function's
code, or a data file changed in place never share a cached result. The code of what
the function calls is not hashed; change its name or clear the cache when that
changes. A script edited while its sweep runs (its functions now sit on other
lines) is refused with a RuntimeError rather than keyed on the wrong source. A run
says how many of its jobs came from the cache. Results must be JSON-serialisable or
numpy arrays and scalars (stored with their dtype and shape, returned as arrays).
``errors="collect"`` keeps going past a job that raises: its slot holds a
:class:`JobError` (not cached, so a rerun retries it). Results come back in the
order of ``configs``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import _progress
from ._io import atomic_write_text

__all__ = ["config_hash", "run_sweep", "JobError"]


class JobError:
    """A job that raised under ``errors="collect"``: its configuration and the error."""

    def __init__(self, config, error: BaseException):
        self.config = config
        self.error = error

    def __repr__(self) -> str:
        return f"JobError({type(self.error).__name__}: {self.error}; config={self.config!r})"


def _encode(obj):
    """JSON default hook: numpy arrays and scalars keep their dtype and shape."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"results must be JSON-serialisable or numpy arrays, got {type(obj).__name__}")


def _decode(d: dict):
    if "__ndarray__" in d:
        return np.asarray(d["__ndarray__"], dtype=d["dtype"]).reshape(d["shape"])
    return d


def _source_hash(fn) -> str:
    """SHA-1 of the function's source (its code object's bytes and constants where no source is found).

    The source is read from its file now, at the line where the function began when it was imported. If the
    file was edited since (a script changed while its sweep runs), that line can hold other code, and the
    hash would silently name other jobs than the cached ones: that is refused by name instead.
    """
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
        text = "" if code is None else repr((code.co_code, code.co_consts, code.co_names))
    else:
        name = getattr(fn, "__name__", "")
        path = inspect.getsourcefile(fn) or ""
        # only Python files: code compiled from elsewhere (a documentation page's block) has no def line to find
        if (inspect.isfunction(fn) or inspect.ismethod(fn)) and name.isidentifier() and path.endswith(".py"):
            head = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("@")][:1]
            if not head or re.match(rf"\s*(async\s+)?def\s+{re.escape(name)}\s*\(", head[0]) is None:
                raise RuntimeError(
                    f"fn: the source file of {name!r} ({path}) changed since it was imported "
                    "(its line now reads other code), so the sweep's job keys would not match its cache; "
                    "restart the run from the edited file"
                )
    return hashlib.sha1(text.encode()).hexdigest()[:16]


_FILE_HASHES: dict[tuple, str] = {}


def _file_hash(path: Path) -> str:
    """SHA-256 of a file's content (memoised on path, size and modification time in this process)."""
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _FILE_HASHES[memo] = h.hexdigest()[:16]
    return _FILE_HASHES[memo]


def _named_files(obj, out: dict) -> dict:
    """{path string: content hash} of every string in ``obj`` (at any depth) that names an existing file."""
    if isinstance(obj, str):
        if 0 < len(obj) < 4096 and "\n" not in obj:
            try:
                p = Path(obj)
                if p.is_file():
                    out[obj] = _file_hash(p)
            except (OSError, ValueError):
                pass
    elif isinstance(obj, dict):
        for v in obj.values():
            _named_files(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _named_files(v, out)
    return out


def _job_key(fn, config, source: str | None = None) -> str:
    from . import __version__

    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    payload = {"fn": name, "version": __version__, "config": config, "source": source or _source_hash(fn)}
    files = _named_files(config, {})
    if files:
        payload["files"] = files
    return config_hash(payload)


def _canonical(config) -> str:
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must be JSON-serialisable (dicts, lists, str, finite numbers): {exc}") from None


def config_hash(config) -> str:
    """First 16 hex digits of the SHA-1 of the configuration's canonical JSON (sorted keys).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sd.config_hash({"a": 1, "b": [2, 3]}) == sd.config_hash({"b": [2, 3], "a": 1})  # key order is not content
    True
    >>> sd.config_hash({"a": 1}) == sd.config_hash({"a": 2})
    False
    """
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
    errors: str = "raise",
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
    errors : {"raise", "collect"}
        ``collect``: a failing job's slot holds a :class:`JobError` and the others go on.

    Returns
    -------
    list of results, in the order of ``configs``.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sd.run_sweep(lambda cfg: {"square": cfg["x"] ** 2}, [{"x": 1}, {"x": 2}], progress=False)
    [{'square': 1}, {'square': 4}]
    """
    if not callable(fn):
        raise ValueError("fn must be callable")
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
    if isinstance(configs, (str, bytes, dict)):
        raise TypeError(f"configs must be a sequence of configurations (dicts), got a {type(configs).__name__}")
    configs = list(configs)
    source = _source_hash(fn)
    keys = [_job_key(fn, c, source) for c in configs]
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    cache = Path(cache_dir) if cache_dir is not None else None
    results: list = [None] * len(configs)
    todo = []
    for i, key in enumerate(keys):
        path = cache / f"{key}.json" if cache is not None else None
        if path is not None and path.is_file():
            results[i] = json.loads(path.read_text(), object_hook=_decode)["result"]
        else:
            todo.append(i)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    show = _progress.enabled(progress)
    if cache is not None and configs and show:
        print(f"{desc}: {len(configs) - len(todo)} of {len(configs)} jobs from cache {str(cache)!r}", file=sys.stderr)
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc, disable=not show)

    def done(i, res):
        results[i] = res
        if cache is not None:
            payload = {"config": configs[i], "result": res}
            atomic_write_text(cache / f"{keys[i]}.json", json.dumps(payload, indent=1, allow_nan=True, default=_encode))
        bar.update(1)

    def finish(i, get):
        try:
            res = get()
        except Exception as err:
            if errors == "raise":
                raise
            results[i] = JobError(configs[i], err)
            bar.update(1)
            return
        done(i, res)

    try:
        if not todo:
            pass
        elif scheduler is not None:
            from distributed import as_completed

            client, owned = _client(scheduler)
            try:
                futures = {client.submit(fn, configs[i], key=f"sweep-{keys[i]}", pure=False): i for i in todo}
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result)
            finally:
                if owned:
                    client.close()
        elif workers == 1:
            for i in todo:
                finish(i, lambda i=i: fn(configs[i]))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            from concurrent.futures import as_completed as futures_completed

            # spawn: fork after an OpenMP parallel region (any torch matmul) deadlocks the child
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx) as pool:
                futures = {pool.submit(fn, configs[i]): i for i in todo}
                for fut in futures_completed(futures):
                    finish(futures[fut], fut.result)
    finally:
        bar.close()
    return results
