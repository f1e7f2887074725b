r"""The exact empirical model of a training set split into shards, on one machine or a Dask cluster.

The empirical distribution of N points is a mixture of S shards, shard s holding N_s of them:

    p_t(x) = sum_s (N_s / N) p_t^s(x),   p_t^s = (1/N_s) sum_{i in s} N(alpha y_i, sigma^2 I),

so each shard evaluates its own empirical model (the package's streaming kernel) and returns its
log-density log p_t^s(x), its denoiser D^s and its class posterior; the client merges them exactly:

    log p_t(x) = logsumexp_s [log(N_s / N) + log p_t^s(x)],
    pi_s(x) = (N_s / N) p_t^s(x) / p_t(x),
    D_t(x) = sum_s pi_s(x) D^s_t(x),   p_t(y | x) = sum_s pi_s(x) p_t^s(y | x),
    s_t(x) = (alpha D_t(x) - x) / sigma^2.

Nothing is approximated: the merge is the log-sum-exp of the in-memory kernel, split at shard
boundaries (tests hold it to 1e-12 against :class:`~statphys_diffusion.EmpiricalDistribution`).
The nearest training point (the census of memorised samples) is the nearest of the shards'
nearest, and the moments merge by the pooled-variance formula.

Where the shards live:

* in this process (``client=None``): the shards are evaluated one after the other; memory is the
  whole set, as for the in-memory model;
* on a Dask cluster (``client``, a ``distributed.Client``): each shard's model is built once on a
  worker (from its file, memory-mapped, or from an array scattered there) and kept in that worker's
  memory; a query sends x to every shard and gathers only (M,) log-densities and (M, d) denoisers,
  so a worker holds its shard plus O(M d). A shard built from a file that is lost with its worker
  is rebuilt by Dask on another worker (the call is retried, not answered from fewer shards); a
  scattered shard cannot be rebuilt, and the call raises :class:`ShardLost` naming it.

The local patch models whose candidates are the training images' own patches (LS, ELS and PSPC) shard
the same way, by training images (:class:`ShardedLocalModel`): each output pixel is a softmax over the
candidates of every shard, so with each shard's per-pixel posterior mean D^s_i and log-normaliser
L^s_i (log sum of its candidates' unnormalised weights),

    D_i = sum_s exp(L^s_i - L_i) D^s_i,   L_i = logsumexp_s L^s_i.

Files: one ``.npy`` per shard, (N_s, d) float64 (or float32), named ``shard-00000.npy``,
``shard-00001.npy``, ... in one directory, with optional ``labels-00000.npy``, ... beside them
(:func:`write_shards` writes them; :meth:`ShardedEmpirical.from_directory` reads them).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from . import _checks
from .citations import references
from .empirical import EmpiricalDistribution
from .mixture import Draws
from .schedules import OrnsteinUhlenbeck, Schedule

__all__ = ["ShardedEmpirical", "ShardedLocalModel", "ShardLost", "write_shards"]


class ShardLost(RuntimeError):
    """A shard's data was lost with its worker and cannot be rebuilt (it was scattered, not read from a file)."""


def write_shards(points, directory, n_shards: int, *, labels=None) -> list[Path]:
    """Split ``points`` (N, d) into ``n_shards`` contiguous shards of near-equal size and write them
    (and ``labels``, (N,)) as ``shard-XXXXX.npy`` (``labels-XXXXX.npy``) in ``directory``; returns the
    shard paths in order. Existing shard files in the directory are refused (not mixed).

    Examples
    --------
    >>> import numpy as np, tempfile, statphys_diffusion as sd
    >>> x = np.arange(20.0).reshape(10, 2)
    >>> paths = sd.write_shards(x, tempfile.mkdtemp(), 3)
    >>> [np.load(p).shape[0] for p in paths]  # sizes as equal as they can be
    [4, 3, 3]
    >>> bool(np.array_equal(np.concatenate([np.load(p) for p in paths]), x))
    True
    """
    pts = _checks.as_float_array(points, "points")
    if pts.ndim != 2 or pts.shape[0] < 1:
        raise ValueError(f"points must have shape (N, d) with N >= 1, got {pts.shape}")
    n_shards = _checks.check_positive_int(n_shards, "n_shards")
    if n_shards > pts.shape[0]:
        raise ValueError(f"n_shards ({n_shards}) exceeds the number of points ({pts.shape[0]}): a shard would be empty")
    lab = None if labels is None else np.asarray(labels)
    if lab is not None and lab.shape != (pts.shape[0],):
        raise ValueError(f"labels must have shape ({pts.shape[0]},), got {lab.shape}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if any(d.glob("shard-*.npy")):
        raise ValueError(f"directory {d} already holds shard files: write to an empty directory")
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(pts.shape[0]), n_shards)):
        p = d / f"shard-{i:05d}.npy"
        np.save(p, np.ascontiguousarray(pts[idx]))
        if lab is not None:
            np.save(d / f"labels-{i:05d}.npy", lab[idx])
        paths.append(p)
    return paths


# -- what runs where a shard lives (module level: Dask pickles these by reference) -----------------------


def _build(source, labels, schedule) -> EmpiricalDistribution:
    """A shard's model from a path (memory-mapped .npy, read once) or an array."""
    pts = np.load(source, mmap_mode="r") if isinstance(source, (str, Path)) else source
    lab = np.load(labels) if isinstance(labels, (str, Path)) else labels
    return EmpiricalDistribution(np.asarray(pts), lab, schedule=schedule)


def _evaluate(model: EmpiricalDistribution, x: np.ndarray, t: float, want: tuple) -> dict:
    """One shard's log-density, and what ``want`` asks for: "denoise", "classes", "nearest", "moments"."""
    out: dict = {}
    if "moments" in want:
        pts = model.points
        mean = pts.mean(axis=0)
        centred = pts - mean
        out["moments"] = (pts.shape[0], mean, centred.T @ centred)
        return out
    if "rows" in want:
        out["rows"] = model.points[x.astype(np.int64)]
        return out
    if model._path() == "iso":  # one pass of the streaming kernel gives all three
        xs, _, a, s2 = model._prep(x, t)
        lse, _, den, cls = model._run_iso(xs, a, s2, denoise="denoise" in want, classes="classes" in want)
        out["log_prob"] = lse
        if "denoise" in want:
            out["denoise"] = den
        if "classes" in want:
            out["classes"] = (model.classes, cls)
    else:  # small d: the small-d kernel, one call per quantity
        out["log_prob"] = model.log_prob(x, t)
        if "denoise" in want:
            out["denoise"] = model.denoise(x, t)
        if "classes" in want:
            out["classes"] = (model.classes, model.class_posterior(x, t))
    if "nearest" in want:
        from .nearest import nearest_neighbours

        a = float(model.schedule.alpha(t))
        nn = nearest_neighbours(np.asarray(x, dtype=np.float64) / a, model.points, k=1) if model.n_points > 1 else None
        if nn is None:  # one point: it is the nearest
            dist = np.linalg.norm(np.asarray(x, dtype=np.float64) / a - model.points[0], axis=1)
            out["nearest"] = (dist, np.zeros(x.shape[0], dtype=np.int64))
        else:
            out["nearest"] = (nn.distances[:, 0], nn.indices[:, 0])
    return out


@references("biroli2024")
class ShardedEmpirical:
    """The exact empirical model of N points held in shards (module docstring: the merge, the files).

    Parameters
    ----------
    shards : sequence of paths to ``.npy`` files (N_s, d), or of arrays (N_s, d)
        In order; every shard non-empty, all of one dimension d. Indices (``nearest``) count through
        the shards in this order.
    labels : sequence of paths or arrays (N_s,), optional
        One per shard, for :meth:`class_posterior`.
    client : distributed.Client, optional
        Where the shards live (module docstring); None evaluates them in this process.
    schedule : Schedule, optional (default Ornstein-Uhlenbeck)

    The interface is the in-memory model's (``schedule``, ``dim``, ``score``, ``denoise``,
    ``log_prob``, ``class_posterior``, ``mean``, ``covariance``, ``sample``), so the theory
    functions and samplers take it unchanged; Hessians are not sharded.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> y = np.random.default_rng(0).standard_normal((30, 12))
    >>> sharded = sd.ShardedEmpirical([y[:10], y[10:25], y[25:]])
    >>> x = np.random.default_rng(1).standard_normal((4, 12))
    >>> bool(np.allclose(sharded.score(x, 0.4), sd.EmpiricalDistribution(y).score(x, 0.4), rtol=0, atol=1e-12))
    True
    """

    def __init__(self, shards: Sequence, *, labels: Sequence | None = None, client=None, schedule=None):
        if isinstance(shards, (str, Path, np.ndarray)) or not isinstance(shards, Sequence) or len(shards) == 0:
            raise ValueError("shards must be a non-empty sequence of .npy paths or (N_s, d) arrays")
        if labels is not None and (not isinstance(labels, Sequence) or len(labels) != len(shards)):
            raise ValueError(f"labels must give one array or path per shard ({len(shards)})")
        self.schedule = OrnsteinUhlenbeck() if schedule is None else schedule
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(self.schedule).__name__}")
        sizes, dims = [], set()
        for i, s in enumerate(shards):
            shape = self._shape(s, i)
            if shape[0] == 0:
                raise ValueError(f"shard {i} ({self._name(s)}) is empty: every shard must hold at least one point")
            sizes.append(shape[0])
            dims.add(shape[1])
        if len(dims) != 1:
            raise ValueError(f"shards have different dimensions {sorted(dims)}: all must be (N_s, d) with one d")
        self._sizes = np.array(sizes, dtype=np.int64)
        self._dim = dims.pop()
        self._names = [self._name(s) for s in shards]
        self._client = client
        lab = [None] * len(shards) if labels is None else list(labels)
        self._labelled = labels is not None
        self._models: list[EmpiricalDistribution] | None = None
        self._futures: list | None = None
        self._scattered: list[bool] = []
        if client is None:
            self._models = [_build(self._local(s), lb, self.schedule) for s, lb in zip(shards, lab)]
        else:
            srcs = [s if isinstance(s, (str, Path)) else client.scatter(np.asarray(s), broadcast=False) for s in shards]
            self._scattered = [not isinstance(s, (str, Path)) for s in shards]
            self._futures = [
                client.submit(_build, str(s) if isinstance(s, Path) else s, lb, self.schedule, pure=False)
                for s, lb in zip(srcs, lab)
            ]
        self._log_share = np.log(self._sizes / self._sizes.sum())

    @classmethod
    def from_directory(cls, directory, *, client=None, schedule=None) -> ShardedEmpirical:
        """The shards ``shard-*.npy`` of ``directory`` in name order, with ``labels-*.npy`` if every shard has one."""
        d = Path(directory)
        paths = sorted(d.glob("shard-*.npy"))
        if not paths:
            raise ValueError(f"no shard-*.npy files in {d}")
        labs = [d / p.name.replace("shard-", "labels-") for p in paths]
        labels = labs if all(p.is_file() for p in labs) else None
        return cls(paths, labels=labels, client=client, schedule=schedule)

    @staticmethod
    def _name(s) -> str:
        return str(s) if isinstance(s, (str, Path)) else f"array {np.shape(s)}"

    @staticmethod
    def _shape(s, i: int) -> tuple[int, int]:
        if isinstance(s, (str, Path)):
            if not Path(s).is_file():
                raise ValueError(f"shard {i}: no file {s}")
            shape = np.load(s, mmap_mode="r").shape
        else:
            shape = np.shape(s)
        if len(shape) != 2:
            raise ValueError(f"shard {i} ({ShardedEmpirical._name(s)}) must have shape (N_s, d), got {shape}")
        return int(shape[0]), int(shape[1])

    @staticmethod
    def _local(s):
        return s if isinstance(s, (str, Path)) else _checks.as_float_array(s, "shard")

    # -- the interface ------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        where = "local" if self._client is None else "dask"
        return f"ShardedEmpirical(N={self.n_points}, d={self.dim}, shards={self.n_shards}, {where})"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def n_points(self) -> int:
        return int(self._sizes.sum())

    @property
    def n_shards(self) -> int:
        return int(self._sizes.size)

    @property
    def shard_sizes(self) -> np.ndarray:
        return self._sizes.copy()

    @property
    def singular(self) -> bool:
        """True: point masses (t > 0 is needed), as for the in-memory model."""
        return True

    def _map(self, x, t, want: tuple) -> list[dict]:
        """Every shard's :func:`_evaluate`, in shard order."""
        if self._client is None:
            assert self._models is not None
            return [_evaluate(m, x, t, want) for m in self._models]
        assert self._futures is not None
        futs = [self._client.submit(_evaluate, f, x, t, want, pure=False) for f in self._futures]
        try:
            return self._client.gather(futs)
        except Exception as exc:  # a scattered shard lost with its worker; or the evaluation failed
            for i, f in enumerate(self._futures):
                if self._scattered[i] and f.status in ("lost", "error", "cancelled"):
                    raise ShardLost(
                        f"shard {i} ({self._names[i]}) was lost with its worker and was scattered, so it cannot be "
                        "rebuilt: give shards as files to let Dask rebuild them"
                    ) from exc
            raise

    def _prep(self, x, t):
        x = _checks.as_points(x, self.dim)
        _checks.check_magnitude(x, "x")
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        return x, t

    def _merge(self, parts: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(log p_t (M,), pi (S, M)) from the shards' log-densities."""
        lp = np.stack([p["log_prob"] for p in parts]) + self._log_share[:, None]
        total = logsumexp(lp, axis=0)
        return total, np.exp(lp - total)

    def log_prob(self, x, t) -> np.ndarray:
        """log p_t(x), shape (M,), float64."""
        x, t = self._prep(x, t)
        return self._merge(self._map(x, t, ()))[0]

    def denoise(self, x, t) -> np.ndarray:
        """E[x_0 | x_t = x] = sum_s pi_s D^s, shape (M, d), dtype of x."""
        x, t = self._prep(x, t)
        parts = self._map(x, t, ("denoise",))
        _, pi = self._merge(parts)
        out = sum(pi[s][:, None] * np.asarray(p["denoise"], dtype=np.float64) for s, p in enumerate(parts))
        return np.asarray(out).astype(x.dtype, copy=False)

    def score(self, x, t) -> np.ndarray:
        """(alpha D_t(x) - x) / sigma_t^2, shape (M, d), dtype of x."""
        x, t = self._prep(x, t)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        d = self.denoise(x, t).astype(np.float64)
        return ((a * d - x) / s2).astype(x.dtype, copy=False)

    @functools.cached_property
    def classes(self) -> np.ndarray | None:
        """The sorted union of the shards' classes (None without labels)."""
        if not self._labelled:
            return None
        probe = np.zeros((1, self.dim))
        parts = self._map(probe, float(self.schedule.default_t_start), ("classes",))
        return np.unique(np.concatenate([p["classes"][0] for p in parts]))

    def class_posterior(self, x, t) -> np.ndarray:
        """p_t(y | x) = sum_s pi_s p_t^s(y | x), shape (M, C), columns in the order of :attr:`classes`."""
        if not self._labelled:
            raise ValueError("this model has no labels: pass labels= (one per shard) for class posteriors")
        x, t = self._prep(x, t)
        parts = self._map(x, t, ("classes",))
        _, pi = self._merge(parts)
        classes = self.classes
        assert classes is not None
        out = np.zeros((x.shape[0], classes.size))
        for s, p in enumerate(parts):
            cols = np.searchsorted(classes, p["classes"][0])
            out[:, cols] += pi[s][:, None] * p["classes"][1]
        return out

    def nearest(self, x, t) -> tuple[np.ndarray, np.ndarray]:
        """(distance, index) of the training point nearest to x / alpha_t (the posterior's mode: the point
        the empirical posterior concentrates on at small t), indices counting through the shards in order."""
        x, t = self._prep(x, t)
        parts = self._map(x, t, ("nearest",))
        dist = np.stack([p["nearest"][0] for p in parts])
        offsets = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])
        idx = np.stack([p["nearest"][1] + o for p, o in zip(parts, offsets)])
        best = np.argmin(dist, axis=0)
        cols = np.arange(x.shape[0])
        return dist[best, cols], idx[best, cols]

    @functools.cached_property
    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        parts = self._map(np.zeros((1, self.dim)), float(self.schedule.default_t_start), ("moments",))
        n = np.array([p["moments"][0] for p in parts], dtype=np.float64)
        means = np.stack([p["moments"][1] for p in parts])
        mean = (n[:, None] * means).sum(axis=0) / n.sum()
        # pooled: sum of within-shard scatter plus the between-shard term
        scatter = sum(p["moments"][2] for p in parts) + ((means - mean).T * n) @ (means - mean)
        return mean, scatter / n.sum()

    def mean(self) -> np.ndarray:
        """The training points' mean (d,)."""
        return self._moments[0].copy()

    def covariance(self) -> np.ndarray:
        """The training points' covariance (d, d), normalised by N (the empirical model's own covariance)."""
        return self._moments[1].copy()

    def sample(self, n: int, t: float = 0.0, *, rng=None) -> Draws:
        """``n`` exact draws of p_t: training points drawn uniformly (through the shards), noised to time t;
        ``components`` are the points' indices counting through the shards (labels are not gathered)."""
        n = _checks.check_positive_int(n, "n")
        rng = _checks.check_rng(rng)
        t = _checks.check_time(t, self.schedule, allow_zero=True)
        pick = rng.integers(0, self.n_points, n)
        offsets = np.concatenate([[0], np.cumsum(self._sizes)])
        shard = np.searchsorted(offsets, pick, side="right") - 1
        y = np.empty((n, self.dim))
        if self._client is None:
            assert self._models is not None
            for s in np.unique(shard):
                y[shard == s] = self._models[s].points[pick[shard == s] - offsets[s]]
        else:
            assert self._futures is not None
            wanted = [(s, pick[shard == s] - offsets[s]) for s in np.unique(shard)]
            got = self._client.gather(
                [self._client.submit(_evaluate, self._futures[s], idx, 0.0, ("rows",), pure=False) for s, idx in wanted]
            )
            for (s, _), g in zip(wanted, got):
                y[shard == s] = g["rows"]
        a, sig = float(self.schedule.alpha(t)), float(self.schedule.sigma(t))
        return Draws(x=a * y + sig * rng.standard_normal(y.shape), x0=y, components=pick, labels=None, t=t)


def _build_local(source, kind: str, patch_size, schedule):
    """A shard's LS, ELS or PSPC model from a path (an .npy of images (N_s, C, H, W)) or an array."""
    from .local import EquivariantLocalEmpirical, LocalEmpirical, PatchPosteriorAverage

    imgs = np.load(source, mmap_mode="r") if isinstance(source, (str, Path)) else source
    cls = {"LS": LocalEmpirical, "ELS": EquivariantLocalEmpirical, "PSPC": PatchPosteriorAverage}[kind]
    return cls(np.asarray(imgs), patch_size=patch_size, schedule=schedule)


def _evaluate_local(model, x, t):
    return model._denoise_parts(x, t)


@references("kamb2024")
class ShardedLocalModel:
    """LS, ELS (Kamb & Ganguli 2024) or PSPC (Niedoba et al. 2024) of training images held in shards; the
    merge is exact (module docstring).

    PSPC merges each crop's posterior mean over the shards by the same log-sum-exp (a crop's candidates
    are the training images' crops at its position), and then averages the crops per pixel: a shard
    returns (M, hv, wv, C, s, s) crop means (s^2 values per pixel and crop position).

    Parameters
    ----------
    kind : {"LS", "ELS", "PSPC"}
        :class:`~statphys_diffusion.LocalEmpirical`, :class:`~statphys_diffusion.EquivariantLocalEmpirical`
        or :class:`~statphys_diffusion.PatchPosteriorAverage` (same-position crops).
    shards : sequence of arrays (N_s, C, H, W) or paths to ``.npy`` files holding them
    patch_size : int or callable t -> int (as the in-memory models)
    client : distributed.Client, optional (None: the shards are evaluated in this process)
    schedule : Schedule, optional (default Ornstein-Uhlenbeck)

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.random.default_rng(0).uniform(-1, 1, (12, 1, 5, 5))
    >>> sharded = sd.ShardedLocalModel("ELS", [train[:5], train[5:]], patch_size=3)
    >>> x = np.random.default_rng(1).standard_normal((2, 25))
    >>> whole = sd.EquivariantLocalEmpirical(train, patch_size=3)
    >>> bool(np.allclose(sharded.denoise(x, 0.3), whole.denoise(x, 0.3), rtol=0, atol=1e-12))
    True
    """

    def __init__(self, kind: str, shards: Sequence, *, patch_size, client=None, schedule=None):
        patchwise = "(the models whose candidates are the images' patches)"
        _checks.check_choice(kind, ("LS", "ELS", "PSPC"), "kind", also=patchwise)
        if isinstance(shards, (str, Path, np.ndarray)) or not isinstance(shards, Sequence) or len(shards) == 0:
            raise ValueError("shards must be a non-empty sequence of .npy paths or (N_s, C, H, W) arrays")
        self.schedule = OrnsteinUhlenbeck() if schedule is None else schedule
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(self.schedule).__name__}")
        shapes = []
        for i, src in enumerate(shards):
            shape = np.load(src, mmap_mode="r").shape if isinstance(src, (str, Path)) else np.shape(src)
            if len(shape) != 4:
                raise ValueError(f"shard {i} must hold images (N_s, C, H, W), got shape {shape}")
            if shape[0] == 0:
                raise ValueError(f"shard {i} is empty: every shard must hold at least one image")
            shapes.append(tuple(int(v) for v in shape))
        if len({sh[1:] for sh in shapes}) != 1:
            raise ValueError(f"shards hold images of different shapes {sorted({sh[1:] for sh in shapes})}")
        self.kind = kind
        self._image_shape = shapes[0][1:]
        self._n = sum(sh[0] for sh in shapes)
        self._client = client
        self._models: list | None = None
        self._futures: list | None = None
        if client is None:
            self._models = [_build_local(src, kind, patch_size, self.schedule) for src in shards]
        else:
            srcs = [src if isinstance(src, (str, Path)) else client.scatter(np.asarray(src)) for src in shards]
            self._futures = [
                client.submit(_build_local, str(src) if isinstance(src, Path) else src, kind, patch_size, self.schedule,
                              pure=False)
                for src in srcs
            ]  # fmt: skip

    def __repr__(self) -> str:
        where = "local" if self._client is None else "dask"
        return f"ShardedLocalModel({self.kind}, N={self._n}, image_shape={self._image_shape}, {where})"

    @property
    def dim(self) -> int:
        return int(np.prod(self._image_shape))

    @property
    def image_shape(self) -> tuple:
        return self._image_shape

    @property
    def n_images(self) -> int:
        return self._n

    def denoise(self, x, t) -> np.ndarray:
        """D_t(x) (M, d), merged over the shards per pixel (module docstring); dtype of x."""
        if self._client is None:
            assert self._models is not None
            parts = [_evaluate_local(m, x, t) for m in self._models]
        else:
            assert self._futures is not None
            parts = self._client.gather(
                [self._client.submit(_evaluate_local, f, x, t, pure=False) for f in self._futures]
            )
        norm = np.stack([p[1] for p in parts])  # (S, M, H, W); PSPC: (S, M, hv, wv), one per crop
        w = np.exp(norm - logsumexp(norm, axis=0))
        dtype = np.asarray(parts[0][0]).dtype
        if self.kind == "PSPC":
            from .local import average_crops

            crops = sum(w[s][..., None, None, None] * np.asarray(p[0], dtype=np.float64) for s, p in enumerate(parts))
            out = average_crops(np.asarray(crops), self._image_shape)
        else:
            out = sum(w[s][:, None] * np.asarray(p[0], dtype=np.float64) for s, p in enumerate(parts))
        return np.asarray(out).reshape(np.shape(out)[0], -1).astype(dtype, copy=False)

    def score(self, x, t) -> np.ndarray:
        """s_t(x) = (alpha_t D_t(x) - x) / sigma_t^2 (Tweedie's relation defines it), shape (M, d)."""
        d = self.denoise(x, t).astype(np.float64)
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        xr = np.asarray(x, dtype=np.float64).reshape(d.shape)
        return ((a * d - xr) / s2).astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64)
