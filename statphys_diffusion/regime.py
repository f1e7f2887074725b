r"""Where a trained network stands at each noise level: memorising, generalising or not converged.

Which theory applies to a network depends on its regime at the noise level in
question (docs/user_guide/conventions.rst, "Measuring trained networks"). :func:`regime_map` measures it
with the network's denoiser D and exact references D_ref at noised points
x_t = alpha x_0 + sigma eps, x_0 drawn from the training set and from held-out data:

- relative denoising error, in units of the identity denoiser x_t / alpha
  (whose error is (sigma / alpha)^2 |eps|^2):
  e = |D(x_t) - x_0|^2 / |x_t / alpha - x_0|^2, on training points (e_train) and
  held-out points (e_held); the gap g = e_held - e_train;
- distance to each reference, normalised by the identity's distance to it:
  delta_ref = |D(x_t) - D_ref(x_t)|^2 / |x_t / alpha - D_ref(x_t)|^2 (0: the network is
  the reference; 1: it is no closer than the identity), on both sets of points;
- for class-conditional models, the Bayes-consistency residual of the joint model,
  rho = |D(x) - sum_c p_t(c | x) D(x, c)|^2 / |x / alpha - D(x)|^2
  (= |eps(x, null) - sum_c p eps(x, c)|^2 / |eps(x, null)|^2): zero for any exact
  labelled model, whose unconditional denoiser is the posterior average of the
  conditional ones. p_t(c | x) is the model's ``class_posterior`` where it has one
  (exact models) and otherwise the posterior tracked along unconditional DDPM
  chains by :class:`~statphys_diffusion.OnlineClassifier`, taken at the chain's grid
  time nearest to each t.

References: the exact empirical model of the training set (what a perfectly
trained network would learn; "empirical" kind), smooth models of the same data
("generalising" kind): the Gaussian of the data and, with labels, the
class-Gaussian mixture (:meth:`GaussianMixture.fit`), and, when passed, the patch
models of generalisation ("local" kind: :class:`~statphys_diffusion.LocalEmpirical`,
:class:`~statphys_diffusion.EquivariantLocalEmpirical`,
:class:`~statphys_diffusion.PatchPosteriorAverage`).

Regime at each t (tolerances ``tol`` and ``gap_tol``, both in the relative units
above), in this order:

1. ``undetermined``: an empirical and a generalising reference are within ``tol``
   of each other (delta of one from the other, on training and on held-out points)
   and the network within ``tol`` of one of them: high noise, where every reference
   denoises alike;
2. ``local`` (only with local references): within ``tol`` of a local reference on both sets, and
   nearer to it (on both sets) than to every empirical and generalising reference: the network
   computes a patch posterior. No gap condition: a patch model reproduces its own training images
   at low noise (each window matches its own patch) while making mosaics of held-out ones, so a
   network that computes one shows the gap of a memoriser on the denoising errors alone;
3. ``memorising``: within ``tol`` of the empirical reference on training points, and nearer to
   it there than to every generalising reference (a network that denoises well is near every
   reference at moderate noise; it memorises only if it follows the training points);
4. ``generalising``: g <= ``gap_tol`` + 2 s.e. (no better on its training points than
   on held-out ones) and either e_held <= 1 - ``tol`` (clearly better than the
   identity) or within ``tol`` of a generalising reference on both sets;
5. ``mixed``: g above that bound but not the empirical denoiser (partial memorisation);
6. ``not converged``: otherwise (equal on both sets, but no better than x_t / alpha:
   an eps-network that has not learnt that noise level; docs/user_guide/conventions.rst).

A network's jvp-free denoiser is all this needs: it works on exact models and
wrapped networks alike (``denoise(x, t[, y])``, ``schedule``, ``dim``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks
from ._progress import iterate
from ._results import TidyResult, estimates, legend
from .empirical import EmpiricalDistribution
from .mixture import GaussianMixture
from .protocols import Denoiser, require

__all__ = ["RegimeMap", "regime_map", "REGIMES"]

REGIMES = ("undetermined", "memorising", "generalising", "mixed", "not converged", "local")


@dataclass(frozen=True, repr=False)
class RegimeMap(TidyResult):
    """Output of :func:`regime_map` (one row per time; distances one column per reference).

    Attributes
    ----------
    times : (T,)
    references : tuple of R names; ``kinds`` : "empirical" or "generalising" for each
    mse_train, mse_held : (T,) relative denoising errors e (module docstring), with ``*_stderr``
    gap : (T,) e_held - e_train, with ``gap_stderr``
    distance_train, distance_held : (T, R) normalised distances delta_ref, with ``*_stderr``
    reference_mse_train, reference_mse_held : (T, R) each reference's own relative error
    consistency : (T,) Bayes-consistency residual rho, or None (unlabelled model), with ``consistency_stderr``
    regime : (T,) one of :data:`REGIMES` per time
    tol, gap_tol : the tolerances the regimes were read with
    n_points : points per set and time
    """

    times: np.ndarray
    references: tuple
    kinds: tuple
    mse_train: np.ndarray
    mse_train_stderr: np.ndarray
    mse_held: np.ndarray
    mse_held_stderr: np.ndarray
    gap: np.ndarray
    gap_stderr: np.ndarray
    distance_train: np.ndarray
    distance_train_stderr: np.ndarray
    distance_held: np.ndarray
    distance_held_stderr: np.ndarray
    reference_mse_train: np.ndarray
    reference_mse_held: np.ndarray
    consistency: np.ndarray | None
    consistency_stderr: np.ndarray | None
    regime: np.ndarray
    tol: float
    gap_tol: float
    n_points: int

    def __repr__(self) -> str:
        counts = {r: int(np.sum(self.regime == r)) for r in REGIMES if np.any(self.regime == r)}
        return (
            f"RegimeMap(times={self.times.size} in [{self.times.min():.4g}, {self.times.max():.4g}], "
            f"references={list(self.references)}, regimes={counts})"
        )

    def to_rows(self) -> list[dict]:
        """One plain dict per (t, reference)."""
        rows = []
        for i, t in enumerate(self.times):
            for j, name in enumerate(self.references):
                rows.append(
                    {
                        "t": float(t),
                        "reference": name,
                        "kind": self.kinds[j],
                        "distance_train": float(self.distance_train[i, j]),
                        "distance_train_stderr": float(self.distance_train_stderr[i, j]),
                        "distance_held": float(self.distance_held[i, j]),
                        "distance_held_stderr": float(self.distance_held_stderr[i, j]),
                        "reference_mse_train": float(self.reference_mse_train[i, j]),
                        "reference_mse_held": float(self.reference_mse_held[i, j]),
                        "mse_train": float(self.mse_train[i]),
                        "mse_train_stderr": float(self.mse_train_stderr[i]),
                        "mse_held": float(self.mse_held[i]),
                        "mse_held_stderr": float(self.mse_held_stderr[i]),
                        "gap": float(self.gap[i]),
                        "gap_stderr": float(self.gap_stderr[i]),
                        "consistency": None if self.consistency is None else float(self.consistency[i]),
                        "consistency_stderr": (
                            None if self.consistency_stderr is None else float(self.consistency_stderr[i])
                        ),
                        "regime": str(self.regime[i]),
                    }
                )
        return rows

    def plot(self, ax=None, *, time_label: str = "t"):
        """Distances to each reference (train solid, held-out dashed), relative errors and regime bands.

        Log axes; the horizontal lines are ``tol`` and 1 (the identity denoiser)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.8))
        t = self.times
        colours = {
            "undetermined": "0.9",
            "memorising": "#f4c7c3",
            "generalising": "#c8e6c9",
            "mixed": "#ffe0b2",
            "not converged": "#cfd8dc",
            "local": "#bbdefb",
        }
        edges = np.sqrt(t[1:] * t[:-1]) if t.size > 1 else t
        lo = np.concatenate([[t[0]], edges])
        hi = np.concatenate([edges, [t[-1]]])
        seen = set()
        for i, r in enumerate(self.regime):
            ax.axvspan(lo[i], hi[i], color=colours[str(r)], alpha=0.6, lw=0, label=None if r in seen else str(r))
            seen.add(r)
        floor = 1e-5  # exact zeros (a network on its own reference) drawn at the floor of the log axis

        def show(v):
            return np.maximum(v, floor)

        for j, name in enumerate(self.references):
            (line,) = ax.plot(t, show(self.distance_train[:, j]), "-o", ms=3, label=f"to {name}, train")
            ax.plot(t, show(self.distance_held[:, j]), "--", color=line.get_color(), label=f"to {name}, held-out")
        ax.plot(t, show(self.mse_train), "-", color="k", lw=1.5, label="MSE, train")
        ax.plot(t, show(self.mse_held), ":", color="k", lw=1.5, label="MSE, held-out")
        if self.consistency is not None:
            ax.plot(t, show(self.consistency), "-", color="purple", lw=1, label="Bayes-consistency residual")
        ax.axhline(self.tol, color="0.4", lw=0.7, ls="-.")
        ax.axhline(1.0, color="0.4", lw=0.7, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(time_label)
        ax.set_ylabel("relative to the identity denoiser x_t / alpha")
        legend(ax, fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
        return ax


def _mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0


def _rows(a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n rows of a: a random subset, or drawn with replacement when a has fewer (fresh noise for each)."""
    return a[np.sort(rng.choice(a.shape[0], n, replace=a.shape[0] < n))]


def _sq(v: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", v, v)


def _normalised_distance(d: np.ndarray, d_ref: np.ndarray, xt: np.ndarray, a: float) -> np.ndarray:
    """Per point |D - D_ref|^2 / |x_t / alpha - D_ref|^2: 0 on the reference, 1 as far as the identity."""
    return _sq(d - d_ref) / np.maximum(_sq(xt / a - d_ref), np.finfo(float).tiny)


def _default_references(train, labels, schedule) -> dict:
    refs = {
        "empirical": EmpiricalDistribution(train, schedule=schedule),
        "gaussian": GaussianMixture.fit(train, schedule=schedule),
    }
    if labels is not None:
        refs["class_gaussian"] = GaussianMixture.fit(train, labels, schedule=schedule)
    return refs


def _kind(ref) -> str:
    from .local import _ImageModel

    if isinstance(ref, EmpiricalDistribution):
        return "empirical"
    return "local" if isinstance(ref, _ImageModel) else "generalising"


def _check_references(references, model, times, d) -> tuple[list, list, list]:
    if not isinstance(references, dict) or not references:
        raise ValueError("references must be a non-empty dict {name: exact model}")
    names, refs, kinds = [], [], []
    for name, ref in references.items():
        require(ref, Denoiser, name=f"references[{name!r}]")
        if getattr(ref, "dim", d) != d:
            raise ValueError(f"references[{name!r}] has dimension {ref.dim}, the data has {d}")
        for fn in ("alpha", "sigma"):
            mine = np.asarray(getattr(model.schedule, fn)(times), dtype=np.float64)
            theirs = np.asarray(getattr(ref.schedule, fn)(times), dtype=np.float64)
            if not np.allclose(mine, theirs, rtol=1e-6, atol=1e-9):
                raise ValueError(
                    f"references[{name!r}] has another schedule than the model ({ref.schedule!r} vs "
                    f"{model.schedule!r}): build it with schedule=model.schedule"
                )
        names.append(str(name))
        refs.append(ref)
        kinds.append(_kind(ref))
    return names, refs, kinds


def _consistency(model, times, n, n_steps, rng, progress) -> tuple[np.ndarray, np.ndarray]:
    """Bayes-consistency residual rho at each time (module docstring), mean and s.e. over points."""
    from .online_posterior import OnlineClassifier

    classes = np.asarray(model.classes)
    schedule = model.schedule
    # exact models draw from their own p_t and have the pointwise posterior; networks use chains
    pointwise = hasattr(model, "sample") and hasattr(model, "class_posterior")
    track = None
    if pointwise:
        draws = [(float(t), model.sample(n, float(t), rng=rng).x) for t in times]
    else:
        track = OnlineClassifier(n_steps, progress=progress).run(
            model, n=n, rng=rng, return_trajectory=True, classes=classes
        )
        grid = track.times[:-1]  # the last state is at t_min, where the denoiser is not asked
        draws = [(float(grid[i]), i) for i in (int(np.argmin(np.abs(grid - t))) for t in times)]
    out, se = np.empty(len(times)), np.empty(len(times))
    for k, (t_k, item) in enumerate(draws):
        if track is None:
            x = item
            p = np.asarray(model.class_posterior(x, t_k), dtype=np.float64)
        else:
            assert track.trajectory is not None  # run with return_trajectory=True
            x = track.trajectory[item]
            p = track.posterior[item]
        a = float(schedule.alpha(t_k))
        d_null = np.asarray(model.denoise(x, t_k), dtype=np.float64)
        mix = np.zeros_like(d_null)
        for j, c in enumerate(classes):
            mix += p[:, j : j + 1] * np.asarray(model.denoise(x, t_k, y=c), dtype=np.float64)
        rho = _sq(d_null - mix) / np.maximum(_sq(x / a - d_null), np.finfo(float).tiny)
        out[k], se[k] = _mean_se(rho)
    return out, se


def regime_map(
    model: Denoiser,
    train,
    held_out,
    times,
    *,
    references: dict | None = None,
    labels=None,
    n_points: int = 256,
    tol: float = 0.25,
    gap_tol: float = 0.05,
    consistency: bool | None = None,
    consistency_steps: int = 250,
    rng=None,
    progress: bool = False,
) -> RegimeMap:
    r"""Measure the regime of ``model`` (a network or any denoiser) at each noise level.

    Parameters
    ----------
    model : score model with ``schedule``, ``dim`` and ``denoise(x, t)``
        (and ``classes`` with ``denoise(x, t, y=c)`` for the consistency residual).
    train : (N, d) array, (N, C, H, W) images or an ImageDataset
        The points the network was trained on. Images are rows in the package's layout ((C, H, W)
        order, flattened: the order torch networks take), floats in the range the network was
        trained on (the model's ``data_range`` where it declares one); integer pixels are refused.
    held_out : (M, d) array, images or an ImageDataset
        Points from the same distribution the network never saw, in the same layout.
    times : (T,) array of times of ``model.schedule`` with alpha, sigma > 0
    references : dict {name: exact model}, optional
        Default: ``empirical`` (:class:`EmpiricalDistribution` of ``train``), ``gaussian``
        (:meth:`GaussianMixture.fit` of ``train``) and, with ``labels``, ``class_gaussian``.
        :class:`EmpiricalDistribution` references count as the memorising kind, the patch models
        (:class:`~statphys_diffusion.LocalEmpirical` and its kin) as local, all others as
        generalising. They must use the model's schedule.
    labels : (N,) array, optional
        Classes of ``train`` (adds the class-Gaussian reference).
    n_points : int
        Training and held-out points per time: a random subset, or drawn with replacement
        (each with its own noise) from a smaller set.
    tol, gap_tol : float
        The tolerances of the regime rule (module docstring).
    consistency : bool, optional
        Measure the Bayes-consistency residual (default: when the model has ``classes``).
    consistency_steps : int
        DDPM steps of the chains that track p(c | x) for models without ``class_posterior``.
    rng : None, int or numpy.random.Generator
        ``None``: fresh entropy; an int: a seed.
    progress : bool

    Returns
    -------
    RegimeMap
    """
    rng = _checks.check_rng(rng)
    require(model, Denoiser, purpose="the regime map compares denoisers")
    schedule = model.schedule
    shape, data_range = getattr(model, "image_shape", None), getattr(model, "data_range", None)
    tr = _checks.as_image_rows(train, "train", image_shape=shape, data_range=data_range, dtype=np.float64)
    if tr.ndim != 2 or tr.shape[0] < 2:
        raise ValueError(f"train must have shape (N, d) with N >= 2, got {tr.shape}")
    d = tr.shape[1]
    model_dim = getattr(model, "dim", None)  # optional: a wrapped network may not know it
    if model_dim not in (None, d):
        raise ValueError(f"train has {d} columns but the model has dimension {model_dim}")
    ho = _checks.as_image_rows(held_out, "held_out", image_shape=shape, data_range=data_range, dtype=np.float64)
    if ho.ndim != 2 or ho.shape[1] != d or ho.shape[0] < 2:
        raise ValueError(f"held_out must have shape (M, {d}) with M >= 2 (the dimension of train), got {ho.shape}")
    ts = _checks.check_times(times, schedule, scalar=False, allow_zero=False, positive_alpha=True)
    n_points = _checks.check_positive_int(n_points, "n_points")
    if n_points < 2:
        raise ValueError("n_points must be at least 2 (standard errors)")
    tol = _checks.check_real(tol, "tol", lo=0, lo_open=True)
    gap_tol = _checks.check_real(gap_tol, "gap_tol", lo=0, lo_open=True)
    if labels is not None and np.asarray(labels).shape != (tr.shape[0],):
        raise ValueError(f"labels must have shape ({tr.shape[0]},) (one per row of train)")
    if references is None:
        references = _default_references(tr, labels, schedule)
    names, refs, kinds = _check_references(references, model, ts, d)
    has_classes = getattr(model, "classes", None) is not None
    if consistency is None:
        consistency = has_classes
    if consistency and not has_classes:
        raise ValueError("consistency=True needs a labelled model (classes and denoise(x, t, y=c))")

    T, R = ts.size, len(refs)
    f = {k: np.empty(T) for k in ("mse_train", "mse_train_se", "mse_held", "mse_held_se", "gap", "gap_se")}
    dist = {k: np.empty((T, R)) for k in ("train", "train_se", "held", "held_se", "ref_train", "ref_held")}
    spread = np.full(T, np.inf)
    regime = np.empty(T, dtype=object)
    steps = iterate(range(T), progress, "regime map")
    x_tr, x_ho = _rows(tr, n_points, rng), _rows(ho, n_points, rng)
    for i in steps:
        t = float(ts[i])
        a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
        xts, ref_out = {}, {}  # split -> x_t; (split, j) -> D_ref(x_t)
        for split, x0 in (("train", x_tr), ("held", x_ho)):
            xt = a * x0 + s * rng.standard_normal(x0.shape)
            xts[split] = xt
            ident = _sq(xt / a - x0)
            dn = np.asarray(model.denoise(xt, t), dtype=np.float64)
            f[f"mse_{split}"][i], f[f"mse_{split}_se"][i] = _mean_se(_sq(dn - x0) / ident)
            for j, ref in enumerate(refs):
                dr = np.asarray(ref.denoise(xt, t), dtype=np.float64)
                ref_out[split, j] = dr
                dist[split][i, j], dist[f"{split}_se"][i, j] = _mean_se(_normalised_distance(dn, dr, xt, a))
                dist[f"ref_{split}"][i, j] = float(np.mean(_sq(dr - x0) / ident))
        f["gap"][i] = f["mse_held"][i] - f["mse_train"][i]
        f["gap_se"][i] = np.hypot(f["mse_held_se"][i], f["mse_train_se"][i])
        for j_e in (j for j in range(R) if kinds[j] == "empirical"):
            for j_g in (j for j in range(R) if kinds[j] == "generalising"):
                worst = max(
                    float(np.mean(_normalised_distance(ref_out[sp, j_e], ref_out[sp, j_g], xts[sp], a)))
                    for sp in ("train", "held")
                )
                spread[i] = min(spread[i], worst)
        regime[i] = _classify(i, f, dist, kinds, spread[i], tol, gap_tol)
    cons = cons_se = None
    if consistency:
        cons, cons_se = _consistency(model, ts, n_points, consistency_steps, rng, progress)
    return RegimeMap(
        times=ts,
        references=tuple(names),
        kinds=tuple(kinds),
        **estimates(**{k: (f[k], f[f"{k}_se"]) for k in ("mse_train", "mse_held", "gap")}),
        **estimates(**{f"distance_{k}": (dist[k], dist[f"{k}_se"]) for k in ("train", "held")}),
        reference_mse_train=dist["ref_train"],
        reference_mse_held=dist["ref_held"],
        consistency=cons,
        consistency_stderr=cons_se,
        regime=regime.astype(str),
        tol=tol,
        gap_tol=gap_tol,
        n_points=n_points,
    )


def _classify(i, f, dist, kinds, spread, tol, gap_tol) -> str:
    """The regime rule of the module docstring at time index i."""
    emp = [j for j, k in enumerate(kinds) if k == "empirical"]
    gen = [j for j, k in enumerate(kinds) if k == "generalising"]
    loc = [j for j, k in enumerate(kinds) if k == "local"]
    d_emp = min((dist["train"][i, j] for j in emp), default=np.inf)
    d_gen_train = min((dist["train"][i, j] for j in gen), default=np.inf)
    d_gen = min((max(dist["train"][i, j], dist["held"][i, j]) for j in gen), default=np.inf)
    d_loc = min((max(dist["train"][i, j], dist["held"][i, j]) for j in loc), default=np.inf)
    d_emp_both = min((max(dist["train"][i, j], dist["held"][i, j]) for j in emp), default=np.inf)
    if spread < tol and min(d_emp, d_gen) <= tol:
        return "undetermined"
    if d_loc <= tol and d_loc < d_gen and d_loc < d_emp_both:
        return "local"
    if d_emp <= tol and d_emp < d_gen_train:
        return "memorising"
    if f["gap"][i] <= gap_tol + 2 * f["gap_se"][i]:
        if f["mse_held"][i] <= 1 - tol or d_gen <= tol:
            return "generalising"
        return "not converged"
    return "mixed"
