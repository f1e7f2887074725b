r"""Pham et al. (2025), "Memorization to Generalization: Emergence of Diffusion Models from
Associative Memory": their three measurements, for any score model (exact or a wrapped network).

1. Sample classification (their ``stats_utils.compute_metrics``). With d_train(x) the distance
   of a generated sample to its nearest training point and d_synth(x) the distance to its
   nearest *other* generated sample,

       memorised:   d_train <= delta_m,
       spurious:    not memorised and d_synth <= delta_s  (a state the model returns to
                    repeatedly that is not a training point),
       generalised: neither.

   Distances are Euclidean, on pixels or in the space of a feature map (their valid runs use
   LPIPS, whose weights cannot be downloaded here: pass any embedding, e.g. the package
   classifier's features). Their L2 path returns 1 / (|x1 - x2| + 1e-8), an inverted distance,
   so its "<= delta" tests select the farthest points; only their LPIPS results are valid.
   Here the distances are the real ones, streamed through :func:`nearest_neighbours`.
2. Recovery ("critical") time of a sample x_0 (their ``run_critical_times.find_opt_time``):
   noise it to x_t = alpha_t x_0 + sigma_t eps, denoise with DDIM (``steps``, ``eta``) down to
   t_min, count a trial recovered when |x_rec - x_0| <= delta; the recovery probability over
   ``n_trials`` trials; the critical time is the largest t recovered with probability >= p.
   They scan t on a grid with a stride; here it is found by bisection on the same draws at
   every t (common random numbers), which makes the estimated probability monotone whenever
   the denoising map is.
3. Relative energy along a path (their ``compute_rel_potential``, after Raya & Ambrogioni 2023):
   with E_t = -log p_t and x(a) = cos(a) x_1 + sin(a) x_2, a in [0, pi/2],

       E_t(x_2) - E_t(x_1) = -int_0^{pi/2} s_t(x(a)) . x'(a) da,  x'(a) = -sin(a) x_1 + cos(a) x_2,

   exact for an exact score (gradient theorem), by Gauss-Legendre quadrature (``n_nodes``).
   For a network the score need not be a gradient and the integral is that of this path.
   Their code integrates the VP drift -beta_t (s + x / 2) on a 20-point Riemann sum, i.e.
   beta_t [E(x_2) - E(x_1)] - beta_t (|x_2|^2 - |x_1|^2) / 4 in these units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .._results import TidyResult, axes
from ..citations import references
from ..nearest import nearest_neighbours, wilson_interval
from ..protocols import Denoiser, ScoreModel, require, satisfies
from ..schedules import DiscreteSchedule

__all__ = [
    "SampleClassification",
    "classify_samples",
    "RecoveryTime",
    "recovery_probability",
    "recovery_time",
    "relative_energy",
]

CATEGORIES = ("memorized", "spurious", "generalized")


@dataclass(frozen=True, repr=False)
class SampleClassification(TidyResult):
    """Output of :func:`classify_samples`.

    Attributes
    ----------
    d_train : (M,) distance of each sample to its nearest training point
    d_synth : (M,) distance to its nearest other sample
    train_index, synth_index : (M,) the rows those distances point to
    labels : (M,) one of "memorized", "spurious", "generalized"
    delta_m, delta_s : the thresholds used
    fractions : dict category -> fraction of samples
    fractions_low, fractions_high : dict category -> Wilson interval bounds (``confidence``)
    confidence : float
    """

    d_train: np.ndarray
    d_synth: np.ndarray
    train_index: np.ndarray
    synth_index: np.ndarray
    labels: np.ndarray
    delta_m: float
    delta_s: float
    fractions: dict
    fractions_low: dict
    fractions_high: dict
    confidence: float

    def __repr__(self) -> str:
        parts = ", ".join(f"{c} {self.fractions[c]:.3f}" for c in CATEGORIES)
        return (
            f"SampleClassification(M={self.labels.size}, {parts}, delta_m={self.delta_m:g}, delta_s={self.delta_s:g})"
        )

    def to_rows(self) -> list[dict]:
        """One plain dict per sample."""
        return [
            {
                "sample": i,
                "d_train": float(self.d_train[i]),
                "d_synth": float(self.d_synth[i]),
                "train_index": int(self.train_index[i]),
                "synth_index": int(self.synth_index[i]),
                "label": str(self.labels[i]),
            }
            for i in range(self.labels.size)
        ]


def _embed(x: np.ndarray, features: Callable | None, name: str) -> np.ndarray:
    if features is None:
        return x
    out = np.asarray(features(x), dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(f"features must map {name} (M, d) to (M, f), got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"features of {name} contain NaN or inf")
    return out


def _positive(v, name: str) -> float:
    return _checks.check_real(v, name, lo=0, lo_open=True)


@references("pham2025")
def classify_samples(
    samples,
    train,
    *,
    delta_m: float,
    delta_s: float,
    features: Callable | None = None,
    confidence: float = 0.95,
    chunk: int = 4096,
) -> SampleClassification:
    """Label generated samples memorised, spurious or generalised (Pham et al. 2025; module docstring).

    Parameters
    ----------
    samples : (M, d) array, M >= 2
    train : (N, d) array
    delta_m, delta_s : float > 0
        Thresholds on d_train and d_synth, in the units of the distance (pixels or features).
    features : callable, optional
        Embedding applied to samples and training points before distances (e.g. a classifier's
        penultimate layer); default: the raw rows.
    confidence : float
        Level of the Wilson intervals on the fractions.
    chunk : int
        Rows per GEMM block of the streamed nearest-neighbour search (memory bound).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> train = np.array([[0.0, 0.0], [10.0, 0.0]])
    >>> samples = np.array([[0.01, 0.0], [5.0, 5.0], [5.0, 5.1], [-8.0, 9.0]])
    >>> c = sd.classify_samples(samples, train, delta_m=0.5, delta_s=0.5)
    >>> c.labels.tolist()  # a copy; two novel samples that repeat each other; one alone
    ['memorized', 'spurious', 'spurious', 'generalized']
    """
    x = _checks.as_float_array(samples, "samples")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"samples must have shape (M, d) with M >= 2 (d_synth needs another sample), got {x.shape}")
    y = _checks.as_float_array(train, "train")
    if y.ndim != 2 or y.shape[1] != x.shape[1]:
        raise ValueError(f"train must have shape (N, {x.shape[1]}) (the samples' dimension), got {y.shape}")
    delta_m, delta_s = _positive(delta_m, "delta_m"), _positive(delta_s, "delta_s")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    fx, fy = _embed(x, features, "samples"), _embed(y, features, "train")
    if fy.shape[1] != fx.shape[1]:
        raise ValueError("features must give samples and train the same number of columns")
    if fy.shape[0] >= 2:
        nn_train = nearest_neighbours(fx, fy, k=1, chunk=chunk)
        d_train, i_train = nn_train.distances[:, 0], nn_train.indices[:, 0]
    else:  # one training point
        d_train = np.sqrt(((fx - fy[0]) ** 2).sum(axis=1))
        i_train = np.zeros(fx.shape[0], dtype=np.int64)
    # nearest other sample: two neighbours among the samples, dropping the sample itself
    nn_self = nearest_neighbours(fx, fx, k=2, chunk=chunk)
    rows = np.arange(fx.shape[0])
    other = np.where(nn_self.indices[:, 0] == rows, 1, 0)
    d_synth = nn_self.distances[rows, other]
    i_synth = nn_self.indices[rows, other]
    memorized = d_train <= delta_m
    spurious = ~memorized & (d_synth <= delta_s)
    labels = np.where(memorized, "memorized", np.where(spurious, "spurious", "generalized"))
    m = labels.size
    fr, lo, hi = {}, {}, {}
    for c in CATEGORIES:
        k = int(np.sum(labels == c))
        fr[c] = k / m
        lo[c], hi[c] = wilson_interval(k, m, confidence)
    return SampleClassification(
        d_train=d_train,
        d_synth=d_synth,
        train_index=i_train,
        synth_index=i_synth,
        labels=labels,
        delta_m=delta_m,
        delta_s=delta_s,
        fractions=fr,
        fractions_low=lo,
        fractions_high=hi,
        confidence=float(confidence),
    )


def relative_energy(model: ScoreModel, x1, x2, t: float, *, n_nodes: int = 64) -> np.ndarray:
    r"""E_t(x_2) - E_t(x_1) along x(a) = cos(a) x_1 + sin(a) x_2 (module docstring), shape (M,).

    ``x1`` and ``x2`` are (M, d) (either may be (1, d), broadcast). Gauss-Legendre quadrature
    with ``n_nodes`` nodes on [0, pi/2]: one score evaluation of M * n_nodes points.
    """
    require(model, ScoreModel, purpose="relative_energy integrates its score")
    a = _checks.as_float_array(x1, "x1", dtype=np.float64)
    b = _checks.as_float_array(x2, "x2", dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"x1 and x2 must have shapes (M, d) with the same d, got {a.shape} and {b.shape}")
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(
            f"x1 and x2 must have the same number of rows (or one row), got {a.shape}, {b.shape}"
        ) from None
    t = _checks.check_time(t, model.schedule, allow_zero=False)
    n_nodes = _checks.check_positive_int(n_nodes, "n_nodes")
    u, w = np.polynomial.legendre.leggauss(n_nodes)
    ang = 0.25 * np.pi * (u + 1.0)  # nodes on [0, pi/2]
    w = 0.25 * np.pi * w
    c, s = np.cos(ang)[:, None, None], np.sin(ang)[:, None, None]
    path = (c * a[None] + s * b[None]).reshape(-1, a.shape[1])
    tangent = -s * a[None] + c * b[None]
    score = np.asarray(model.score(path, t), dtype=np.float64).reshape(tangent.shape)
    return -np.einsum("n,nmd,nmd->m", w, score, tangent)


@dataclass(frozen=True, repr=False)
class RecoveryTime(TidyResult):
    """Output of :func:`recovery_time`.

    Attributes
    ----------
    t : (M,) critical time per sample (the largest t recovered with probability >= p; ``t_lo``
        if even that fails, ``t_hi`` if every time passes)
    probability : (M,) recovery probability at ``t``
    t_lo, t_hi : the bracket searched
    p, delta, n_trials : the protocol's settings
    bracketed : (M,) bool, True where the probability crosses p inside (t_lo, t_hi)
    """

    t: np.ndarray
    probability: np.ndarray
    t_lo: float
    t_hi: float
    p: float
    delta: float
    n_trials: int
    bracketed: np.ndarray

    def __repr__(self) -> str:
        return (
            f"RecoveryTime(M={self.t.size}, median t={np.median(self.t):.4g}, p={self.p}, "
            f"delta={self.delta:g}, bracketed {int(self.bracketed.sum())}/{self.t.size})"
        )

    def to_rows(self) -> list[dict]:
        return [
            {"sample": i, "t": float(self.t[i]), "probability": float(self.probability[i]), "bracketed": bool(b)}
            for i, b in enumerate(self.bracketed)
        ]

    def plot(self, ax=None):
        """The distribution of the per-sample critical times (histogram, bracketed samples only); returns the Axes."""
        ax = axes(ax)
        t = self.t[self.bracketed]
        if t.size:
            ax.hist(t, bins=max(5, min(40, t.size // 3)), color="C0", alpha=0.8)
        ax.set_xlabel(f"critical time (recovered with p >= {self.p:g})")
        ax.set_ylabel("samples")
        return ax


def _prober(model, x0, n_trials, delta, steps, eta, features, rng):
    """prob(t, rows) -> fraction of the trials of each sample recovered within delta when noised to t.

    The noise draws (M, n_trials, d), DDIM's seed and the embedded targets are fixed here, once,
    and reused at every t (common random numbers).
    """
    from ..samplers import DDIM

    sch = model.schedule
    n = int(n_trials)
    z = rng.standard_normal((x0.shape[0], n, x0.shape[1]))
    seed = int(rng.integers(2**63 - 1))
    target = np.repeat(_embed(x0, features, "x0"), n, axis=0).reshape(x0.shape[0], n, -1)
    sampler = DDIM(int(steps), eta=float(eta))

    def prob(t: float, rows=slice(None)) -> np.ndarray:
        a, s = float(sch.alpha(t)), float(sch.sigma(t))
        zr = z[rows]
        m, d = zr.shape[0], zr.shape[2]
        xt = (a * x0[rows][:, None, :] + s * zr).reshape(m * n, d)
        rec = sampler.sample(model, xt, t_start=t, t_end=sch.t_min, rng=np.random.default_rng(seed)).x
        feat = _embed(rec.astype(np.float64), features, "x_rec").reshape(m, n, -1)
        dist = np.sqrt(((feat - target[rows]) ** 2).sum(axis=2))
        return (dist <= delta).mean(axis=1)

    return prob


@references("pham2025")
def recovery_probability(
    model: Denoiser,
    x0,
    t: float,
    *,
    delta: float,
    n_trials: int = 10,
    steps: int = 20,
    eta: float = 0.0,
    features: Callable | None = None,
    rng=None,
) -> np.ndarray:
    """Probability (over ``n_trials`` noisings) that DDIM from time ``t`` returns within ``delta`` of x0, (M,)."""
    x, rng = _recovery_inputs(model, x0, delta, n_trials, steps, eta, rng)
    t = _checks.check_time(t, model.schedule, allow_zero=False)
    return _prober(model, x, n_trials, delta, steps, eta, features, rng)(t)


def _recovery_inputs(model, x0, delta, n_trials, steps, eta, rng):
    require(model, Denoiser, purpose="the recovery protocol runs its reverse chains")
    x = _checks.as_float_array(x0, "x0", dtype=np.float64)
    d = model.dim if satisfies(model, ScoreModel) else None  # a wrapped network may not know its dim
    if x.ndim != 2 or d not in (None, x.shape[1]):
        raise ValueError(f"x0 must have shape (M, {d if d is not None else 'd'}), got {x.shape}")
    _positive(delta, "delta")
    _checks.check_positive_int(n_trials, "n_trials")
    _checks.check_positive_int(steps, "steps")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    return x, _checks.check_rng(rng)


@references("pham2025")
def recovery_time(
    model: Denoiser,
    x0,
    *,
    delta: float,
    p: float = 0.9,
    n_trials: int = 10,
    steps: int = 20,
    eta: float = 0.0,
    t_range: tuple | None = None,
    n_bisect: int = 12,
    features: Callable | None = None,
    rng=None,
) -> RecoveryTime:
    """Largest t at which x0 is recovered with probability >= p (Pham et al. 2025; module docstring).

    Bisection on [t_lo, t_hi] (default: DDPM t = 1 on a DiscreteSchedule, else 1e-3 of
    ``default_t_start``, up to ``default_t_start``), ``n_bisect`` halvings in log t, the same noise draws at every t.
    The probability is assumed to decrease with t (more noise, fewer recoveries); samples where
    it does not cross p inside the bracket are flagged ``bracketed = False``. The noise draws
    (and, for ``eta > 0``, DDIM's seed) are shared by every t, so with ``eta = 0`` the estimated
    probability of each sample is the same function of t at every bisection step.
    """
    x, rng = _recovery_inputs(model, x0, delta, n_trials, steps, eta, rng)
    if not 0 < p <= 1:
        raise ValueError(f"p must lie in (0, 1], got {p}")
    n_bisect = _checks.check_positive_int(n_bisect, "n_bisect")
    sch = model.schedule
    if t_range is None:
        lo = 1.0 if isinstance(sch, DiscreteSchedule) else max(sch.t_min, 1e-3 * sch.default_t_start)
        t_range = (lo, float(sch.default_t_start))
    lo, hi = (float(v) for v in t_range)
    for name, v in (("t_range[0]", lo), ("t_range[1]", hi)):
        _checks.check_time(v, sch, name, allow_zero=False)
    if not hi > lo:
        raise ValueError(f"t_range must be increasing, got {t_range}")
    prob = _prober(model, x, n_trials, delta, steps, eta, features, rng)
    p_lo, p_hi = prob(lo), prob(hi)
    m = x.shape[0]
    a, b = np.full(m, np.log(lo)), np.full(m, np.log(hi))
    p_a = p_lo.copy()
    active = (p_lo >= p) & (p_hi < p)
    for _ in range(n_bisect):
        if not np.any(active):
            break
        mid = 0.5 * (a + b)
        # one evaluation per distinct midpoint (samples share the grid until they split)
        for val in np.unique(mid[active]):
            rows = active & (mid == val)
            pm = prob(float(np.exp(val)), rows)
            ok = pm >= p
            idx = np.flatnonzero(rows)
            a[idx[ok]], p_a[idx[ok]] = val, pm[ok]
            b[idx[~ok]] = val
    t = np.exp(a)
    t = np.where(p_hi >= p, hi, t)
    prob_t = np.where(p_hi >= p, p_hi, p_a)
    return RecoveryTime(
        t=t,
        probability=prob_t,
        t_lo=lo,
        t_hi=hi,
        p=float(p),
        delta=float(delta),
        n_trials=int(n_trials),
        bracketed=active,
    )
