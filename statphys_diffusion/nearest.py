r"""Nearest training points: the memorisation metric for samples and along trajectories.

Memorisation test (Yoon et al. 2023; used by Pham et al. 2025 and Achilli et al.
2024): a sample x is a copy of the training set when its nearest training
point is much closer than the second nearest,

    ratio(x) = |x - NN_1(x)| / |x - NN_2(x)| < threshold   (1/3 by default).

Distances are streamed over the training set in chunks with one GEMM per chunk
(|x|^2 - 2 x.y + |y|^2) keeping a running top-k, so N = 50,000 and d = 3,072
need memory for one (M, chunk) block only; the k distances kept at the end are
recomputed directly as |x - y| (no cancellation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import _checks
from ._backend import check_backend, check_tensor, is_tensor
from ._results import TidyResult, UnpacksAs

__all__ = [
    "NearestNeighbours",
    "nearest_neighbours",
    "MemorizedFraction",
    "memorized_fraction",
    "TrajectoryCollapse",
    "trajectory_collapse_times",
]


@dataclass(frozen=True, repr=False)
class NearestNeighbours(TidyResult):
    """The k nearest training points of each sample.

    Attributes
    ----------
    distances : (M, k) Euclidean distances, increasing along each row
    indices : (M, k) rows of the training set
    """

    distances: np.ndarray
    indices: np.ndarray

    def to_rows(self) -> list[dict]:
        """One dict per (sample, neighbour rank): ``sample``, ``rank`` (0: nearest), ``index``, ``distance``."""
        m, k = self.distances.shape
        return [
            {"sample": i, "rank": j, "index": int(self.indices[i, j]), "distance": float(self.distances[i, j])}
            for i in range(m)
            for j in range(k)
        ]

    @property
    def ratio(self) -> np.ndarray:
        """|x - NN_1| / |x - NN_2| per sample (0 for an exact copy), shape (M,)."""
        if self.distances.shape[1] < 2:
            raise ValueError("the ratio needs k >= 2 neighbours")
        d1, d2 = self.distances[:, 0], self.distances[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d1 == 0, 0.0, d1 / d2)


def _check_train(train, d=None) -> np.ndarray:
    y = _checks.as_float_array(train, "train")
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"train must have shape (N, d) with N >= 2, got {y.shape}")
    if d is not None and y.shape[1] != d:
        raise ValueError(f"train must have d = {d} columns to match the samples, got {y.shape[1]}")
    return y


def _top_k(x: np.ndarray, y: np.ndarray, k: int, scale: float, chunk: int) -> np.ndarray:
    """Indices (M, k) of the k smallest |x - scale * y_i|, streamed over chunks of y."""
    m = x.shape[0]
    xx = np.einsum("ij,ij->i", x, x)
    best_d = np.full((m, k), np.inf)
    best_i = np.zeros((m, k), dtype=np.int64)
    for lo in range(0, y.shape[0], chunk):
        yc = y[lo : lo + chunk].astype(x.dtype, copy=False)  # per chunk: float32 points are never copied whole
        dist = xx[:, None] - 2 * scale * (x @ yc.T) + (scale * scale) * np.einsum("ij,ij->i", yc, yc)[None, :]
        kk = min(k, yc.shape[0])
        part = np.argpartition(dist, kk - 1, axis=1)[:, :kk]
        cand_d = np.concatenate([best_d, np.take_along_axis(dist, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + lo], axis=1)
        keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(cand_d, keep, axis=1)
        best_i = np.take_along_axis(cand_i, keep, axis=1)
    return best_i


def _nearest_torch(samples, train, k: int, chunk: int, device) -> tuple:
    """Candidates by one GEMM and one ``topk`` per chunk of ``train`` on ``device``, then the exact
    distances (float64) and the final order, all there; returns numpy (distances, indices)."""
    import torch

    def tensor(v, name):
        if is_tensor(v):
            return v.to(device)
        return torch.as_tensor(_checks.as_float_array(v, name), device=device)

    x = check_tensor(tensor(samples, "samples"), "samples")
    y = check_tensor(tensor(train, "train"), "train", x.shape[1], min_rows=2, rows="N")
    if k > y.shape[0]:
        raise ValueError(f"k must be <= N = {y.shape[0]}, got {k}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    xs, ys = x.to(dtype), y.to(dtype)
    xx = (xs * xs).sum(dim=1)
    best_d = torch.full((x.shape[0], k), float("inf"), dtype=dtype, device=device)
    best_i = torch.zeros((x.shape[0], k), dtype=torch.int64, device=device)
    for lo in range(0, y.shape[0], chunk):
        yc = ys[lo : lo + chunk]
        dist = xx[:, None] - 2 * (xs @ yc.T) + (yc * yc).sum(dim=1)[None, :]
        kk = min(k, yc.shape[0])
        part_d, part_i = torch.topk(dist, kk, dim=1, largest=False, sorted=False)
        cand_d = torch.cat([best_d, part_d], dim=1)
        cand_i = torch.cat([best_i, part_i + lo], dim=1)
        keep = torch.argsort(cand_d, dim=1, stable=True)[:, :k]
        best_d = torch.gather(cand_d, 1, keep)
        best_i = torch.gather(cand_i, 1, keep)
    # index before converting: only the M x k kept rows of train are copied to float64
    exact = torch.sqrt(((x.double()[:, None, :] - y[best_i].double()) ** 2).sum(dim=2))
    order = torch.argsort(exact, dim=1, stable=True)
    dist64 = torch.gather(exact, 1, order).cpu().numpy()
    return dist64, torch.gather(best_i, 1, order).cpu().numpy()


def nearest_neighbours(
    samples, train, *, k: int = 2, chunk: int = 4096, backend: str | None = None, device=None
) -> NearestNeighbours:
    """The ``k`` nearest rows of ``train`` (N, d) to each row of ``samples`` (M, d).

    Candidates come from the streamed GEMM expansion |x|^2 - 2 x.y + |y|^2; their distances are
    then recomputed exactly in float64 and re-sorted, so ties and rounding in the expansion
    cannot reorder clearly separated neighbours.

    Parameters
    ----------
    samples : (M, d) array or torch tensor
    train : (N, d) array or torch tensor, N >= 2
    k : int, at most N
    chunk : int
        Rows of ``train`` per GEMM.
    backend : {"numpy", "torch"}, optional
        Default: ``"torch"`` when ``samples`` or ``train`` is a torch tensor, else ``"numpy"``.
        ``"torch"`` streams the search (and the exact recomputation) through torch on
        ``device``.
    device : torch device, optional
        For ``backend="torch"``; default: the device of the tensor given (``samples`` first),
        else the CPU. Tensors elsewhere are moved there.

    Returns
    -------
    NearestNeighbours
        numpy ``distances`` (M, k) float64 and ``indices`` (M, k) int64, whatever the inputs: the
        result is a table of neighbours, not a tensor to compute on.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> y = np.random.default_rng(0).standard_normal((200, 4))
    >>> sd.nearest_neighbours(y[:2] + 1e-3, y, k=1).indices[:, 0]
    array([0, 1])
    """
    tensors = [v for v in (samples, train) if is_tensor(v)]
    if backend is None:
        backend = "torch" if tensors else "numpy"
    if device is None and tensors and backend == "torch":
        device = tensors[0].device
    backend, dev = check_backend(backend, device, cpu="numpy")
    k = _checks.check_positive_int(k, "k")
    chunk = _checks.check_positive_int(chunk, "chunk")
    if backend == "torch":
        return NearestNeighbours(*_nearest_torch(samples, train, k, chunk, dev))
    samples, train = (v.detach().cpu().numpy() if is_tensor(v) else v for v in (samples, train))
    x = _checks.as_float_array(samples, "samples")
    if x.ndim != 2:
        raise ValueError(f"samples must have shape (M, d), got {x.shape}")
    y = _check_train(train, x.shape[1])
    if k > y.shape[0]:
        raise ValueError(f"k must be <= N = {y.shape[0]}, got {k}")
    dtype = np.result_type(x.dtype, y.dtype)
    idx = _top_k(x.astype(dtype, copy=False), y, k, 1.0, chunk)
    x64 = x.astype(np.float64, copy=False)
    dist = np.sqrt(((x64[:, None, :] - y[idx].astype(np.float64)) ** 2).sum(axis=2))
    order = np.argsort(dist, axis=1, kind="stable")
    return NearestNeighbours(np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a binomial proportion successes / n (informative at 0 and 1)."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


@dataclass(frozen=True, repr=False)
class MemorizedFraction(UnpacksAs, TidyResult):
    """Output of :func:`memorized_fraction`; unpacks as the former tuple ``(value, low, high)``.

    Attributes
    ----------
    value : fraction of samples with ratio < ``threshold``
    low, high : the interval's bounds (``method``, ``confidence``)
    threshold, confidence : float
    method : "wilson" or "bootstrap"
    n : number of samples
    """

    value: float
    low: float
    high: float
    threshold: float
    confidence: float
    method: str
    n: int

    _unpack = ("value", "low", "high")

    def to_rows(self) -> list[dict]:
        """One plain dict."""
        return [dataclasses.asdict(self)]


@dataclass(frozen=True, repr=False)
class TrajectoryCollapse(UnpacksAs, TidyResult):
    """Output of :func:`trajectory_collapse_times`; unpacks as the former tuple ``(t, nearest_index)``.

    Attributes
    ----------
    t : (M,) collapse time of each chain
    nearest_index : (S + 1, M) nearest training point at each step
    times : (S + 1,) the trajectory's times
    """

    t: np.ndarray
    nearest_index: np.ndarray
    times: np.ndarray

    _unpack = ("t", "nearest_index")

    def to_rows(self) -> list[dict]:
        """One plain dict per chain: its collapse time and final nearest training point."""
        return [
            {"chain": i, "t": float(t), "final_nearest_index": int(self.nearest_index[-1, i])}
            for i, t in enumerate(self.t)
        ]


def memorized_fraction(
    ratio,
    threshold: float = 1 / 3,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    method: str = "wilson",
) -> MemorizedFraction:
    """Fraction of samples with ratio < ``threshold`` and a confidence interval.

    ``method="wilson"`` (default since 0.2; it was "bootstrap"): the Wilson score interval
    (Wilson 1927), informative at 0 and 1 as well. ``method="bootstrap"``: percentile bootstrap
    (resampling the samples), which collapses to [p, p] when every sample or none is memorised.
    Returns a :class:`MemorizedFraction` (``frac, lo, hi = memorized_fraction(...)`` still works).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> ratio = np.array([0.05, 0.2, 0.8, 0.9, 1.0, 0.1])  # nearest / second-nearest training distance
    >>> mf = sd.memorized_fraction(ratio, threshold=1 / 3, rng=0)
    >>> float(mf.value)  # three of six below 1/3
    0.5
    """
    r = _checks.as_float_array(ratio, "ratio", dtype=np.float64, ndim=1)
    if r.size == 0:
        raise ValueError("ratio must be non-empty")
    if np.any(r < 0):
        raise ValueError(f"ratio must be non-negative (a ratio of distances), got min {r.min():.4g}")
    threshold = _checks.check_real(threshold, "threshold")
    confidence = _checks.check_real(confidence, "confidence")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if method not in ("bootstrap", "wilson"):
        raise ValueError(f"method must be 'bootstrap' or 'wilson', got {method!r}")
    hit = (r < threshold).astype(np.float64)

    def result(lo: float, hi: float) -> MemorizedFraction:
        return MemorizedFraction(float(hit.mean()), lo, hi, float(threshold), float(confidence), method, int(hit.size))

    if method == "wilson":
        return result(*wilson_interval(int(hit.sum()), hit.size, confidence))
    n_bootstrap = _checks.check_positive_int(n_bootstrap, "n_bootstrap")
    rng = _checks.check_rng(rng)
    boots = rng.binomial(hit.size, hit.mean(), size=n_bootstrap) / hit.size
    q = (1 - confidence) / 2
    return result(float(np.quantile(boots, q)), float(np.quantile(boots, 1 - q)))


def trajectory_collapse_times(trajectory, times, train, schedule, *, chunk: int = 4096) -> TrajectoryCollapse:
    """Last time the nearest (noised) training point changes along each reverse trajectory.

    At step s the nearest training point is argmin_i |x_s - alpha_{t_s} y_i| (the
    component of largest weight of the exact isotropic empirical posterior). The
    collapse time of a chain is the time of the step after which that index never
    changes again (``times[0]`` if it never changes).

    Parameters
    ----------
    trajectory : (S + 1, M, d) states along ``times``
    times : (S + 1,) decreasing times of ``schedule``
    train : (N, d)
    schedule : Schedule

    Returns
    -------
    TrajectoryCollapse
        ``t`` (M,) collapse times and ``nearest_index`` (S + 1, M); unpacks as the former tuple
        ``(collapse_times, nearest_index)``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.VarianceExploding()  # alpha = 1: nearest means nearest training point
    >>> train = np.array([[0.0], [10.0]])
    >>> times = np.array([3.0, 2.0, 1.0, 0.5])
    >>> traj = np.array([[[6.0]], [[4.0]], [[1.0]], [[0.2]]])  # nearest: 1, 0, 0, 0
    >>> float(sd.trajectory_collapse_times(traj, times, train, sch).t[0])  # the step after the last change
    2.0
    """
    tr = _checks.as_float_array(trajectory, "trajectory")
    if tr.ndim != 3:
        raise ValueError(f"trajectory must have shape (S + 1, M, d), got {tr.shape}")
    ts = _checks.check_times(times, schedule, order="decreasing", scalar=False)
    if ts.shape[0] != tr.shape[0]:
        raise ValueError(f"times must have one entry per trajectory step ({tr.shape[0]}), got {ts.shape[0]}")
    y = _check_train(train, tr.shape[2])
    chunk = _checks.check_positive_int(chunk, "chunk")
    idx = np.empty(tr.shape[:2], dtype=np.int64)
    for s, t in enumerate(ts):
        a = float(schedule.alpha(_checks.check_time(float(t), schedule, "times")))
        idx[s] = _top_k(tr[s], y, 1, a, chunk)[:, 0]
    changed = idx[1:] != idx[:-1]  # (S, M): step s -> s+1 changed
    last = np.where(changed.any(axis=0), changed.shape[0] - np.argmax(changed[::-1], axis=0), 0)
    return TrajectoryCollapse(t=ts[last], nearest_index=idx, times=ts)
