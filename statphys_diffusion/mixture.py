r"""Gaussian mixtures with exact noisy marginals at every time.

If p_0 = sum_k pi_k N(mu_k, Sigma_k) and x_t = alpha_t x_0 + sigma_t eps, then
p_t = sum_k pi_k N(alpha_t mu_k, S_k) with S_k = alpha_t^2 Sigma_k + sigma_t^2 I
(the forward kernel is linear-Gaussian). With g_k(x) = S_k^{-1}(alpha mu_k - x):

- responsibilities r_k(x) = softmax_k(log pi_k - 1/2 log det(2 pi S_k) - 1/2 |x - alpha mu_k|^2_{S_k^{-1}})
- score s_t(x) = grad log p_t(x) = sum_k r_k g_k
- denoiser D_t(x) = E[x_0 | x_t = x] = (x + sigma^2 s_t(x)) / alpha (Tweedie; Efron 2011)
- Hessian of log p_t = sum_k r_k (g_k g_k^T - S_k^{-1}) - s s^T
- class posterior p_t(y | x) = sum of r_k over the components of class y.

Conventions (docs/user_guide/conventions.rst): points are rows, x has shape (M, d); t is a scalar
forward time of the model's schedule; arrays are float64 unless the caller
passes float32, in which case outputs are float32 (schedule arithmetic stays
float64).

Three evaluation paths, chosen by shape, all agreeing to rounding:
small d (d <= 8) a fused numba kernel; isotropic components with d > 8 the
streaming BLAS kernel (bounded memory for any K and M); other covariances
with d > 8 a loop over components with an online log-sum-exp.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from . import _checks
from ._backend import check_backend, check_tensor, is_tensor
from ._covariance import CovarianceSet
from ._results import TidyResult, coordinates
from .conventions import denoiser_from_score
from .schedules import OrnsteinUhlenbeck, Schedule

__all__ = ["GaussianMixture", "Draws", "MixtureComponents"]

SMALL_D = 8


# Kernels (numba) and scipy.special are imported on first use, so that
# `import statphys_diffusion` stays fast and compiles nothing.
def _small():
    from ._kernels import small_d

    return small_d


def _stream():
    from ._kernels import streaming

    return streaming


def softmax(z, axis):
    from scipy.special import softmax as _softmax

    return _softmax(z, axis=axis)


@dataclass(frozen=True, repr=False)
class Draws(TidyResult):
    """Exact draws of the forward process.

    Attributes
    ----------
    x : (n, d) noisy points x_t
    x0 : (n, d) clean points
    components : (n,) component index of each draw
    labels : (n,) class label of each draw, or None for unlabelled models
    t : float
    """

    x: np.ndarray
    x0: np.ndarray
    components: np.ndarray
    labels: np.ndarray | None
    t: float

    def to_rows(self) -> list[dict]:
        """One dict per draw: ``sample``, ``component``, ``label`` (None if unlabelled), ``t`` and, for
        d <= 16, the coordinates ``x_0, ...`` and ``x0_0, ...`` (higher d: use :attr:`x`, :attr:`x0`)."""
        return [
            {
                "sample": i,
                "component": int(self.components[i]),
                "label": None if self.labels is None else _checks.plain_label(self.labels[i]),
                "t": float(self.t),
                **coordinates("x", self.x[i]),
                **coordinates("x0", self.x0[i]),
            }
            for i in range(self.x.shape[0])
        ]


def _frozen(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


@dataclass(frozen=True, repr=False)
class MixtureComponents(TidyResult):
    """Read-only view of a mixture's components: what exact kernels outside the class need.

    Attributes
    ----------
    means : (K, d) mu_k at t = 0
    weights, log_weights : (K,) pi_k and log pi_k (-inf for a zero weight)
    mean_sq_norms : (K,) |mu_k|^2
    covariance : the covariance operator of the K components: ``kind``, ``var`` (isotropic
        variances v_k), ``logdet(a2, s2)`` and ``dlogdet(a2, s2)`` of S_k = a2 Sigma_k + s2 I,
        ``apply_prec(k, u, a2, s2)`` = u S_k^{-1} for rows u, ``quad_cov(k, g)`` = g Sigma_k g^T per row
    label_codes : (K,) int index of each component's class into ``classes``, or None
    classes : (C,) sorted class labels, or None
    """

    means: np.ndarray
    weights: np.ndarray
    log_weights: np.ndarray
    mean_sq_norms: np.ndarray
    covariance: CovarianceSet
    label_codes: np.ndarray | None
    classes: np.ndarray | None

    def to_rows(self) -> list[dict]:
        """One dict per component: ``component``, ``weight``, ``log_weight``, ``mean_sq_norm``,
        ``class`` (None if unlabelled), ``covariance`` (the kind), ``variance`` (the mean variance
        tr(Sigma_k)/d) and, for d <= 16, the mean's coordinates ``mean_0, ...``."""
        tr = self.covariance.traces() / self.means.shape[1]
        return [
            {
                "component": k,
                "weight": float(self.weights[k]),
                "log_weight": float(self.log_weights[k]),
                "mean_sq_norm": float(self.mean_sq_norms[k]),
                "class": None
                if self.label_codes is None or self.classes is None
                else _checks.plain_label(self.classes[self.label_codes[k]]),
                "covariance": self.covariance.kind,
                "variance": float(tr[k]),
                **coordinates("mean", self.means[k]),
            }
            for k in range(self.means.shape[0])
        ]

    def require_labels(self) -> np.ndarray:
        """``label_codes``, or a ValueError saying that the mixture is unlabelled."""
        if self.label_codes is None:
            raise ValueError("this model has no labels: pass labels=... to use class posteriors")
        return self.label_codes


def check_partition(groups, classes) -> np.ndarray:
    """Validate a partition of ``classes``; returns the group index of each class (in ``classes`` order)."""
    classes = np.asarray(classes)
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
        raise ValueError("groups must be a sequence of sequences of classes (a partition), e.g. [[0, 1], [2, 3]]")
    group_of = np.full(classes.size, -1, dtype=np.int64)
    known = {_checks.plain_label(c): i for i, c in enumerate(classes)}
    n_groups = 0
    for g, members in enumerate(groups):
        members = list(np.atleast_1d(np.asarray(members, dtype=object)))
        if not members:
            raise ValueError(f"groups[{g}] is empty: every group of a partition needs a class")
        for c in members:
            c = _checks.plain_label(c)
            if c not in known:
                raise ValueError(f"groups[{g}] names {c!r}, which is not a class (classes: {classes.tolist()})")
            if group_of[known[c]] >= 0:
                raise ValueError(f"groups: class {c!r} is in two groups (a partition puts it in one)")
            group_of[known[c]] = g
        n_groups += 1
    missing = classes[group_of < 0]
    if missing.size:
        raise ValueError(f"groups must cover every class; missing {missing.tolist()}")
    if n_groups < 2:
        raise ValueError("groups must have at least 2 groups (one group carries no decision)")
    return group_of


class GaussianMixture:
    r"""A mixture of K Gaussians in d dimensions, noised by a schedule.

    Parameters
    ----------
    means : array_like, shape (K, d)
    covariances : array_like
        Shape by ``covariance_type``: ``"isotropic"`` (K,) variances (a scalar
        is broadcast); ``"diagonal"`` (K, d); ``"full"`` (K, d, d) symmetric
        positive definite; ``"lowrank"`` a tuple ``(basis (K, d, m), variances
        (K, m), noise_var (K,))`` meaning Sigma_k = U_k diag(lam_k) U_k^T + v_k I
        with orthonormal U_k. Zero variances make degenerate components
        (point masses, manifolds); the model then needs t > 0.
    weights : array_like, shape (K,), optional
        Non-negative, summing to 1. Default uniform.
    covariance_type : {"full", "diagonal", "isotropic", "lowrank"}
    labels : array_like, shape (K,), optional
        A class label per component (integers); enables :meth:`class_posterior`.
    schedule : Schedule, optional
        Default :class:`~statphys_diffusion.schedules.OrnsteinUhlenbeck`.
    backend : {"numba", "torch"}
        Where isotropic mixtures in d > ``SMALL_D`` dimensions (the empirical model at image
        scale) are evaluated: the numba + BLAS streaming kernel (default) or the same online
        log-sum-exp in torch (:mod:`statphys_diffusion._kernels.torch_streaming`), on ``device``.
        Numpy inputs give numpy outputs. A torch tensor ``x`` given to ``score``, ``denoise``,
        ``log_prob``, ``class_posterior`` or ``component_posterior`` gives a torch tensor on x's
        device, with either backend; with ``backend="torch"`` on the streaming path the kernel
        then runs on x's device with no copy to the host (the model's constant arrays are copied
        there once and cached). The other paths ignore the choice.
    device : str or torch.device, optional
        The torch backend's device (default ``"cpu"``), e.g. ``"cuda"``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.0)   # two deltas at -1 and +1 (OU schedule)
    >>> a, s2 = np.exp(-1.0), 1 - np.exp(-2.0)
    >>> closed_form = (a * np.tanh(a * 0.3 / s2) - 0.3) / s2      # (alpha E[x0 | x] - x) / sigma^2
    >>> bool(np.isclose(gm.score(np.array([[0.3]]), 1.0)[0, 0], closed_form, rtol=1e-12))
    True
    """

    _keeps_float32 = False  # EmpiricalDistribution: float32 points stay float32 (one copy in memory)

    def __init__(
        self,
        means,
        covariances,
        weights=None,
        *,
        covariance_type: str = "full",
        labels=None,
        schedule: Schedule | None = None,
        backend: str = "numba",
        device=None,
    ):
        # float64, except where a subclass keeps float32 points as they are (EmpiricalDistribution: one
        # copy in memory; a float64 copy is made only when a float64 computation needs it, _mu_as)
        keep32 = self._keeps_float32 and np.asarray(means).dtype == np.float32
        mu = _checks.as_float_array(means, "means", dtype=None if keep32 else np.float64)
        if mu.ndim != 2 or mu.shape[0] < 1 or mu.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1, got {mu.shape}")
        k, d = mu.shape
        _checks.check_magnitude(mu, "means")
        self._means = mu
        self._cov = CovarianceSet.build(covariance_type, covariances, k, d)
        self._weights = np.full(k, 1.0 / k) if weights is None else _checks.check_weights(weights, k)
        with np.errstate(divide="ignore"):
            self._log_w = np.log(self._weights)
        if labels is None:
            self._codes, self._classes = None, None
        else:
            self._codes, self._classes = _checks.check_labels(labels, k)
        if schedule is None:
            schedule = OrnsteinUhlenbeck()
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self._mu_cache: dict = {}
        self._backend, self._device = check_backend(backend, device, cpu="numba")
        self._torch_cache: dict = {}
        self._musq = np.einsum("kd,kd->k", mu, mu, dtype=np.float64)  # float64 whatever the means' dtype

    # -- named constructors -----------------------------------------------------
    @classmethod
    def isotropic(
        cls, means, variances, weights=None, *, labels=None, schedule=None, backend: str = "numba", device=None
    ) -> GaussianMixture:
        """Components N(mu_k, v_k I); ``variances`` (K,) or a scalar; ``backend``/``device`` as the constructor."""
        return cls(
            means,
            variances,
            weights,
            covariance_type="isotropic",
            labels=labels,
            schedule=schedule,
            backend=backend,
            device=device,
        )

    @classmethod
    def diagonal(cls, means, variances, weights=None, *, labels=None, schedule=None) -> GaussianMixture:
        """Components N(mu_k, diag(v_k)); ``variances`` (K, d)."""
        return cls(means, variances, weights, covariance_type="diagonal", labels=labels, schedule=schedule)

    @classmethod
    def full(cls, means, covariances, weights=None, *, labels=None, schedule=None) -> GaussianMixture:
        """Components N(mu_k, Sigma_k); ``covariances`` (K, d, d) positive definite."""
        return cls(means, covariances, weights, covariance_type="full", labels=labels, schedule=schedule)

    @classmethod
    def fit(cls, data, labels=None, *, ridge: float = 1e-4, schedule=None) -> GaussianMixture:
        """The Gaussian (``labels=None``) or class-Gaussian mixture of a data array.

        One full-covariance component per class: the class's sample mean and unbiased
        sample covariance plus ``ridge`` * I (keeps it positive definite when a class has
        fewer points than dimensions), weighted by the class frequency. These are the
        smooth "generalising" references of :func:`statphys_diffusion.regime_map`: exact
        scores, denoisers and class posteriors at every noise level.

        Parameters
        ----------
        data : (N, d) array
        labels : (N,) integer array, optional
            Class of each row; each class needs at least 2 rows.
        ridge : float > 0
        schedule : Schedule, optional
        """
        x = _checks.as_float_array(data, "data", dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"data must have shape (N, d) with N >= 2, got {x.shape}")
        if not (np.isfinite(ridge) and ridge > 0):
            raise ValueError(f"ridge must be a positive number (keeps the covariances positive definite), got {ridge}")
        if labels is None:
            lab = np.zeros(x.shape[0], dtype=np.int64)
        else:
            lab = np.asarray(labels)
            if lab.shape != (x.shape[0],):
                raise ValueError(f"labels must have shape ({x.shape[0]},) (one per row of data), got {lab.shape}")
        classes = np.unique(lab)
        means, covs, counts = [], [], []
        for c in classes:
            xc = x[lab == c]
            if xc.shape[0] < 2:
                raise ValueError(f"class {c!r} has fewer than 2 rows: no covariance")
            m = xc.mean(axis=0)
            z = xc - m
            means.append(m)
            covs.append(z.T @ z / (xc.shape[0] - 1) + ridge * np.eye(x.shape[1]))
            counts.append(xc.shape[0])
        w = np.asarray(counts, dtype=np.float64)
        return cls.full(
            np.stack(means), np.stack(covs), w / w.sum(), labels=None if labels is None else classes, schedule=schedule
        )

    @classmethod
    def low_rank(
        cls, means, basis, variances, noise_var=0.0, weights=None, *, labels=None, schedule=None
    ) -> GaussianMixture:
        """Components N(mu_k, U_k diag(lam_k) U_k^T + v_k I), U_k (d, m) orthonormal."""
        mu = np.asarray(means)
        k = mu.shape[0] if mu.ndim == 2 else 1
        nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), (k,))
        return cls(means, (basis, variances, nv), weights, covariance_type="lowrank", labels=labels, schedule=schedule)

    # -- properties ---------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return self._means.shape[0]

    @property
    def dim(self) -> int:
        return self._means.shape[1]

    @property
    def means(self) -> np.ndarray:
        """Component means mu_k at t = 0, shape (K, d) (read-only view)."""
        v = self._means.view()
        v.flags.writeable = False
        return v

    @property
    def weights(self) -> np.ndarray:
        return self._weights.copy()

    @property
    def components(self) -> MixtureComponents:
        """Read-only view of the components (means, weights, covariance operator, label codes)."""
        return MixtureComponents(
            means=_frozen(self._means),
            weights=_frozen(self._weights),
            log_weights=_frozen(self._log_w),
            mean_sq_norms=_frozen(self._musq),
            covariance=self._cov,
            label_codes=None if self._codes is None else _frozen(self._codes),
            classes=None if self._classes is None else _frozen(self._classes),
        )

    @property
    def covariance_type(self) -> str:
        return self._cov.kind

    @property
    def covariances(self) -> np.ndarray:
        """Dense Sigma_k, shape (K, d, d) (builds d x d matrices: small d only)."""
        return self._cov.dense()

    @property
    def labels(self) -> np.ndarray | None:
        """Class label of each component (original values), or None."""
        return None if self._codes is None or self._classes is None else self._classes[self._codes]

    @property
    def classes(self) -> np.ndarray | None:
        """Sorted distinct class labels; columns of :meth:`class_posterior` follow this order."""
        return None if self._classes is None else self._classes.copy()

    @property
    def class_weights(self) -> np.ndarray:
        """Prior class probabilities p(y), in the order of :attr:`classes`."""
        codes, classes = self._labelled()
        return np.bincount(codes, weights=self._weights, minlength=len(classes))

    @property
    def singular(self) -> bool:
        """True when p_0 has no density (some degenerate component): t must be > t_min."""
        return self._cov.singular

    def with_schedule(self, schedule: Schedule) -> GaussianMixture:
        """The same data distribution under another schedule."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._mu_cache = self._mu_cache
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        new.schedule = schedule
        return new

    def relabel(self, groups) -> GaussianMixture:
        """The same mixture with each component labelled by its class's group (a coarse decision).

        ``groups`` is a partition of :attr:`classes`: a sequence of non-empty sequences of classes,
        each class in exactly one (e.g. ``[[0, 1], [2, 3]]``). Group g becomes label g, so class
        posteriors, entropies and rates of the result are those of "which group" (Handke et al. 2025
        call these decision problems).
        """
        codes = self._require_labels()
        group_of = check_partition(groups, self._classes)
        out = copy.copy(self)
        out._codes, out._classes = _checks.check_labels(group_of[codes], self.n_components)
        out._mu_cache = {}
        out._torch_cache = {}
        return out

    def conditional(self, y) -> GaussianMixture:
        """The class-conditional model p(x | y) (components of class ``y``, weights renormalised).

        Every quantity of the returned mixture (score, denoiser, ...) is the
        class-conditional one at any t, since the forward kernel is linear.
        """
        codes, classes = self._labelled()
        hit = np.flatnonzero(classes == y)
        if hit.size == 0:
            raise ValueError(f"y={y!r} is not a class of this model (classes: {classes.tolist()})")
        cache = self.__dict__.setdefault("_cond_cache", {})
        c = int(hit[0])
        if c not in cache:
            idx = np.flatnonzero((codes == c) & (self._weights > 0))
            if idx.size == 0:
                raise ValueError(f"class y={y!r} has zero prior weight: p(x | y) is undefined")
            sub = object.__new__(GaussianMixture)
            sub._means = self._means[idx]
            sub._cov = self._cov.subset(idx)
            sub._weights = self._weights[idx] / self._weights[idx].sum()
            sub._log_w = np.log(sub._weights)
            sub._codes = np.zeros(idx.size, np.int64)
            sub._classes = classes[[c]]
            sub.schedule = self.schedule
            sub._mu_cache = {k: np.ascontiguousarray(v[idx]) for k, v in self._mu_cache.items()}
            sub._musq = self._musq[idx]
            sub._backend, sub._device, sub._torch_cache = self._backend, self._device, {}
            cache[c] = sub
        sub = cache[c]
        if sub.schedule is not self.schedule:
            sub = sub.with_schedule(self.schedule)
        return sub

    def _by_class(self, method: str, x, t, y) -> np.ndarray:
        """Evaluate ``method`` of p(x | y_i) row by row (rows grouped by class)."""
        x = _checks.as_points(x, self.dim)
        self._require_labels()
        y_arr = np.asarray(y)
        if y_arr.ndim == 0:
            return getattr(self.conditional(y_arr.item()), method)(x, t)
        if y_arr.shape != (x.shape[0],):
            raise ValueError(f"y must be a scalar class or have shape ({x.shape[0]},) (one class per row of x)")
        out = np.empty(x.shape, dtype=x.dtype)
        for c in np.unique(y_arr):
            sel = y_arr == c
            out[sel] = getattr(self.conditional(c.item()), method)(x[sel], t)
        return out

    def mean(self) -> np.ndarray:
        """Data mean E[x_0], shape (d,)."""
        return self._weights @ self._means

    def covariance(self) -> np.ndarray:
        """Data covariance Cov[x_0] = sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T, shape (d, d)."""
        m = self.mean()
        second = np.einsum("k,kd,ke->de", self._weights, self._means, self._means)
        second += np.einsum("k,kde->de", self._weights, self._cov.dense())
        return second - np.outer(m, m)

    def __repr__(self) -> str:
        lab = "" if self._classes is None else f", n_classes={len(self._classes)}"
        return (
            f"{type(self).__name__}(K={self.n_components}, d={self.dim}, "
            f"covariance_type={self._cov.kind!r}{lab}, schedule={self.schedule!r})"
        )

    # -- validation -----------------------------------------------------------------
    def _require_labels(self) -> np.ndarray:
        return self.components.require_labels()

    def _labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes, classes) of a labelled mixture; the "no labels" ValueError otherwise."""
        codes = self._require_labels()
        assert self._classes is not None  # set together with the codes
        return codes, self._classes

    def _prep(self, x, t) -> tuple[np.ndarray, float, float, float]:
        x = _checks.as_points(x, self.dim)
        _checks.check_magnitude(x, "x")
        t = _checks.check_time(t, self.schedule, allow_zero=not self.singular)
        a = float(self.schedule.alpha(t))
        s2 = float(self.schedule.sigma2(t))
        return x, t, a, s2

    def _mu_as(self, dtype) -> np.ndarray:
        """The means in ``dtype``: the stored array when it has that dtype, else a cached copy."""
        dtype = np.dtype(dtype)
        if dtype == self._means.dtype:
            return self._means
        if dtype not in self._mu_cache:
            self._mu_cache[dtype] = np.ascontiguousarray(self._means, dtype=dtype)
        return self._mu_cache[dtype]

    def _path(self) -> str:
        if self.dim <= SMALL_D:
            return "small"
        return "iso" if self._cov.kind == "isotropic" else "generic"

    # -- core evaluation --------------------------------------------------------------
    def _small_params(self, a, s2):
        prec = self._cov.dense_prec(a * a, s2)
        bias = self._log_w - 0.5 * (self.dim * np.log(2 * np.pi) + self._cov.logdet(a * a, s2))
        return np.ascontiguousarray(a * self._mu_as(np.float64)), prec, bias

    def _run_small(self, x, a, s2, *, score=False, resp=False, hess=False):
        means_t, prec, bias = self._small_params(a, s2)
        m, d, k = x.shape[0], self.dim, self.n_components
        lse = np.empty(m)
        out_s = np.empty((m, d)) if score or hess else np.empty((0, d))
        out_r = np.empty((m, k)) if resp else np.empty((0, k))
        out_h = np.empty((m, d, d)) if hess else np.empty((0, d, d))
        x64 = np.ascontiguousarray(x, dtype=np.float64)
        _small().mixture_small_d(x64, means_t, prec, bias, score, resp, hess, lse, out_s, out_r, out_h)
        return lse, out_s, out_r, out_h

    @property
    def backend(self) -> str:
        """ "numba" or "torch": where the isotropic streaming path runs (constructor docstring)."""
        return self._backend

    def _torch_params(self, dtype, device):
        """The torch backend's copies of (mu in dtype, |mu|^2, log w, var, codes) on ``device``, cached
        per (dtype, device)."""
        import torch

        dev = torch.device(device)
        key = (np.dtype(dtype), str(dev))
        if key not in self._torch_cache:
            f64 = torch.float64
            codes = self._codes if self._codes is not None else np.zeros(self.n_components, np.int64)
            self._torch_cache[key] = (
                torch.as_tensor(self._mu_as(key[0]), device=dev),
                torch.as_tensor(self._musq, dtype=f64, device=dev),
                torch.as_tensor(self._log_w, dtype=f64, device=dev),
                torch.as_tensor(self._cov.var, dtype=f64, device=dev),
                torch.as_tensor(np.asarray(codes, dtype=np.int64), device=dev),
            )
        return self._torch_cache[key]

    def _run_iso(self, x, a, s2, *, score=False, denoise=False, classes=False):
        codes = self._codes if (classes and self._codes is not None) else np.zeros(self.n_components, np.int64)
        n_cls = len(self._classes) if classes else 0
        x = np.ascontiguousarray(x)
        if self._backend == "torch":
            import torch

            from ._kernels import torch_streaming

            out = self._torch_iso(torch.as_tensor(x, device=self._device), a, s2, n_cls, score, denoise)
            return tuple(torch_streaming.as_numpy(o) for o in out)
        return _stream().streaming_iso(
            x, self._mu_as(x.dtype), self._musq, self._log_w, self._cov.var, a, s2, codes, n_cls, score, denoise
        )

    def _torch_iso(self, xt, a, s2, n_cls, score, denoise):
        """The torch streaming kernel at the rows of tensor ``xt``, on its device (codes unused when n_cls == 0)."""
        import torch

        from ._kernels import torch_streaming

        np_dtype = np.float32 if xt.dtype == torch.float32 else np.float64
        mu, musq, log_w, var, codes = self._torch_params(np_dtype, xt.device)
        return torch_streaming.streaming_iso_torch(
            xt.contiguous(), mu, musq, log_w, var, a, s2, codes, n_cls, score, denoise
        )

    def _generic_logits_and_g(self, x, a, s2, k):
        # quadratic forms in float64 whatever the input (a float32 |x - a mu|^2_{S^-1} loses the
        # differences between components that decide the posterior at large t)
        diff = (a * self._means[k].astype(np.float64, copy=False))[None, :] - x.astype(np.float64, copy=False)
        g = self._cov.apply_prec(k, diff, a * a, s2)
        quad = np.einsum("ij,ij->i", diff, g, dtype=np.float64)
        return quad, g

    def _generic_bias(self, a, s2):
        return self._log_w - 0.5 * (self.dim * np.log(2 * np.pi) + self._cov.logdet(a * a, s2))

    def _generic_logits(self, x, a, s2) -> np.ndarray:
        bias = self._generic_bias(a, s2)
        out = np.empty((x.shape[0], self.n_components))
        for k in range(self.n_components):
            quad, _ = self._generic_logits_and_g(x, a, s2, k)
            out[:, k] = bias[k] - 0.5 * quad
        return out

    def _run_generic(self, x, a, s2, *, score=False):
        """Online log-sum-exp over components; returns (lse, score or None)."""
        bias = self._generic_bias(a, s2)
        m = x.shape[0]
        run_max = np.full(m, -np.inf)
        run_sum = np.zeros(m)
        acc = np.zeros(x.shape, dtype=np.float64) if score else None
        for k in range(self.n_components):
            if bias[k] == -np.inf:
                continue
            quad, g = self._generic_logits_and_g(x, a, s2, k)
            logit = bias[k] - 0.5 * quad
            new = np.maximum(run_max, logit)
            with np.errstate(invalid="ignore"):
                scale = np.where(run_max == -np.inf, 0.0, np.exp(run_max - new))
            w = np.exp(logit - new)
            run_sum = run_sum * scale + w
            if score:
                acc *= scale[:, None]
                acc += w[:, None] * g
            run_max = new
        lse = run_max + np.log(run_sum)
        return lse, (acc / run_sum[:, None] if score else None)

    # -- torch tensors in, torch tensors out -------------------------------------------------
    _TENSOR_OUTPUT = {"log_prob": 0, "score": 1, "denoise": 2, "class_posterior": 3}

    def _tensor_call(self, name: str, x, t, **kw):
        """``name`` for a torch tensor ``x``: the result as a tensor on x's device.

        With ``backend="torch"`` on the isotropic streaming path (and no ``y``) the kernel runs
        where x is, without a copy to the host; otherwise x goes through numpy and the numpy
        result comes back as a tensor (same dtype rules as for arrays)."""
        import torch

        if self._backend == "torch" and self._path() == "iso" and kw.get("y") is None and name in self._TENSOR_OUTPUT:
            return self._tensor_iso(name, x, t)
        out = getattr(self, name)(x.detach().cpu().numpy(), t, **kw)
        return torch.as_tensor(out, device=x.device)

    def _tensor_iso(self, name: str, x, t):
        import torch

        check_tensor(x, "x", self.dim)
        if x.numel():
            _checks.check_magnitude(np.full((1, self.dim), float(x.abs().max())), "x")
        t = _checks.check_time(t, self.schedule, allow_zero=not self.singular)
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        if name == "denoise" and a == 0:
            raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
        n_cls = len(self._labelled()[1]) if name == "class_posterior" else 0
        out = self._torch_iso(x, a, s2, n_cls, name == "score", name == "denoise")[self._TENSOR_OUTPUT[name]]
        if not bool(torch.isfinite(out).all()):
            raise _checks.overflow_error(f"the {name}")
        return out

    # -- public API ------------------------------------------------------------------------
    def log_prob(self, x, t) -> np.ndarray:
        """log p_t(x), shape (M,), float64 (a torch tensor x gives a tensor on its device)."""
        if is_tensor(x):
            return self._tensor_call("log_prob", x, t)
        x, t, a, s2 = self._prep(x, t)
        path = self._path()
        if path == "small":
            return self._run_small(x, a, s2)[0]
        if path == "iso":
            return self._run_iso(x, a, s2)[0]
        return self._run_generic(x, a, s2)[0]

    def score(self, x, t, y=None) -> np.ndarray:
        """Score grad_x log p_t(x), shape (M, d), dtype of x.

        With ``y`` (a class, or one class per row) the class-conditional score
        grad_x log p_t(x | y). A torch tensor x gives a tensor on its device (module docstring).
        """
        if is_tensor(x):
            return self._tensor_call("score", x, t, y=y)
        if y is not None:
            return self._by_class("score", x, t, y)
        x, t, a, s2 = self._prep(x, t)
        path = self._path()
        if path == "small":
            out = self._run_small(x, a, s2, score=True)[1]
        elif path == "iso":
            out = self._run_iso(x, a, s2, score=True)[1]
        else:
            out = self._run_generic(x, a, s2, score=True)[1]
        return _checks.check_finite_output(out, "the score").astype(x.dtype, copy=False)

    def denoise(self, x, t, y=None) -> np.ndarray:
        """Posterior mean E[x_0 | x_t = x] = (x + sigma_t^2 s_t(x)) / alpha_t, shape (M, d).

        With ``y`` (a class, or one class per row) the class-conditional
        denoiser E[x_0 | x_t = x, y]. A torch tensor x gives a tensor on its device.
        """
        if is_tensor(x):
            return self._tensor_call("denoise", x, t, y=y)
        if y is not None:
            return self._by_class("denoise", x, t, y)
        x, t, a, s2 = self._prep(x, t)
        if a == 0:
            raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
        if self._path() == "iso":
            return _checks.check_finite_output(self._run_iso(x, a, s2, denoise=True)[2], "the denoiser")
        # Tweedie in float64 whatever the input: at large t, (x + sigma^2 s) / alpha divides a small
        # difference by a small alpha, which a float32-rounded score would swamp
        x64 = x.astype(np.float64, copy=False)
        return denoiser_from_score(x64, self.score(x64, t), t, self.schedule).astype(x.dtype, copy=False)

    def component_posterior(self, x, t) -> np.ndarray:
        """p_t(k | x) for each component, shape (M, K), float64; rows sum to 1."""
        if is_tensor(x):
            return self._tensor_call("component_posterior", x, t)
        x, t, a, s2 = self._prep(x, t)
        path = self._path()
        if path == "small":
            return self._run_small(x, a, s2, resp=True)[2]
        if path == "iso":
            logits = _stream().dense_iso_logits(x, self._mu_as(x.dtype), self._musq, self._log_w, self._cov.var, a, s2)
        else:
            logits = self._generic_logits(x, a, s2)
        return softmax(logits, axis=1)

    def class_posterior(self, x, t) -> np.ndarray:
        """p_t(y | x), shape (M, C), float64, columns in the order of :attr:`classes`."""
        if is_tensor(x):
            return self._tensor_call("class_posterior", x, t)
        codes, classes = self._labelled()
        if self._path() == "iso":
            x, t, a, s2 = self._prep(x, t)
            return self._run_iso(x, a, s2, classes=True)[3]
        r = self.component_posterior(x, t)
        out = np.zeros((r.shape[0], len(classes)))
        for c in range(len(classes)):
            out[:, c] = r[:, codes == c].sum(axis=1)
        return out

    def hessian(self, x, t) -> np.ndarray:
        """Hessian of log p_t at each point, shape (M, d, d), float64.

        sum_k r_k (g_k g_k^T - S_k^{-1}) - s s^T. Dense d x d per point: for
        large d prefer :meth:`hvp`.
        """
        x, t, a, s2 = self._prep(x, t)
        if self._path() == "small":
            return self._run_small(x, a, s2, hess=True)[3]
        eye = np.eye(self.dim)
        out = np.empty((x.shape[0], self.dim, self.dim))
        for i in range(x.shape[0]):
            rows = np.repeat(x[i : i + 1].astype(np.float64), self.dim, axis=0)
            out[i] = self._hvp_checked(rows, eye, a, s2)
        return out

    def hvp(self, x, t, v) -> np.ndarray:
        """Hessian-vector products H_t(x_i) v_i, shape (M, d), float64.

        H v = sum_k r_k (g_k (g_k . v) - S_k^{-1} v) - s (s . v), evaluated
        without forming H (O(K d) per point for isotropic components).
        """
        x, t, a, s2 = self._prep(x, t)
        v = _checks.as_points(v, self.dim, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the same shape as x {x.shape}, got {v.shape}")
        return self._hvp_checked(x.astype(np.float64), v.astype(np.float64), a, s2)

    def hessian_operator(self, x, t):
        """The Hessian of log p_t at one point x (d,) as a scipy ``LinearOperator`` (symmetric).

        The responsibilities (and, for structured covariances, g_k) are computed
        once per point. Isotropic components: each product costs two passes over
        the means (G v and G^T w with G = (alpha mu - x)/c),
        H v = G^T (r * G v) - (sum r / c) v - s (s . v). Other kinds: one
        S_k^{-1} v per component with non-negligible r_k. For Lanczos / MINRES at large d.
        """
        from scipy.sparse.linalg import LinearOperator

        xr = _checks.as_points(np.asarray(x).reshape(1, -1), self.dim)
        xr, t, a, s2 = self._prep(xr, t)
        xr = xr.astype(np.float64)
        d = self.dim
        if self._path() != "iso":
            # responsibilities and g_k computed once; components with r_k < 1e-18 r_max are
            # dropped (a relative change below float64 rounding); each product then costs
            # one S_k^{-1} v per kept component
            r = softmax(self._generic_logits(xr, a, s2), axis=1)[0]
            kept = [k for k in range(self.n_components) if r[k] >= 1e-18 * r.max()]
            gs = {k: self._generic_logits_and_g(xr, a, s2, k)[1][0] for k in kept}
            s_vec = sum(r[k] * gs[k] for k in kept)

            def mv(v):
                v = np.asarray(v, dtype=np.float64).reshape(d)
                out = -s_vec * float(s_vec @ v)
                for k in kept:
                    out += r[k] * (gs[k] * float(gs[k] @ v) - self._cov.apply_prec(k, v[None], a * a, s2)[0])
                return out

            return LinearOperator((d, d), matvec=mv, dtype=np.float64)
        mu64 = self._mu_as(np.float64)
        logits = _stream().dense_iso_logits(xr, mu64, self._musq, self._log_w, self._cov.var, a, s2)[0]
        r = np.exp(logits - logits.max())
        r /= r.sum()
        inv_c = 1.0 / (a * a * self._cov.var + s2)
        keep = r > 1e-300 * r.max()
        mu, r, inv_c = mu64[keep], r[keep], inv_c[keep]
        x0 = xr[0]
        rc = r * inv_c
        s_vec = a * (rc @ mu) - rc.sum() * x0
        diag = float(rc.sum())
        w_base = r * inv_c * inv_c

        def mv(v):
            v = np.asarray(v, dtype=np.float64).reshape(d)
            gv = a * (mu @ v) - float(x0 @ v)  # (alpha mu_k - x) . v, times c_k below
            w = w_base * gv
            return a * (w @ mu) - w.sum() * x0 - diag * v - s_vec * float(s_vec @ v)

        return LinearOperator((d, d), matvec=mv, dtype=np.float64)

    def _hvp_checked(self, x, v, a, s2):
        if self._path() == "iso":
            return self._hvp_iso(x, v, a, s2)
        r = softmax(self._generic_logits(x, a, s2), axis=1)
        s = np.zeros_like(x)
        out = np.zeros_like(x)
        for k in range(self.n_components):
            _, g = self._generic_logits_and_g(x, a, s2, k)
            s += r[:, k : k + 1] * g
            gv = np.einsum("ij,ij->i", g, v)
            out += r[:, k : k + 1] * (g * gv[:, None] - self._cov.apply_prec(k, v, a * a, s2))
        return out - s * np.einsum("ij,ij->i", s, v)[:, None]

    def _hvp_iso(self, x, v, a, s2, chunk: int = 4096):
        lse_full = self._run_iso(x, a, s2)[0]
        c_all = a * a * self._cov.var + s2
        xv = np.einsum("ij,ij->i", x, v)
        s = np.zeros_like(x)
        ggv = np.zeros_like(x)  # sum_k r_k g_k (g_k . v)
        pv = np.zeros(x.shape[0])  # sum_k r_k / c_k
        for k0 in range(0, self.n_components, chunk):
            sl = slice(k0, min(self.n_components, k0 + chunk))
            mu_c = self._mu_as(np.float64)[sl]
            logits = _stream().dense_iso_logits(x, mu_c, self._musq[sl], self._log_w[sl], self._cov.var[sl], a, s2)
            r = np.exp(logits - lse_full[:, None])
            inv_c = 1.0 / c_all[sl]
            rc = r * inv_c
            s += a * (rc @ mu_c) - rc.sum(axis=1)[:, None] * x
            gv = (a * (v @ mu_c.T) - xv[:, None]) * inv_c  # g_k . v
            w = rc * gv
            ggv += a * (w @ mu_c) - w.sum(axis=1)[:, None] * x
            pv += rc.sum(axis=1)
        return ggv - pv[:, None] * v - s * np.einsum("ij,ij->i", s, v)[:, None]

    @_checks.keyword_rng(3)
    def sample(self, n: int, t=0.0, *, rng: np.random.Generator | int | None = None) -> Draws:
        """Exact draws of (x_t, x_0, component, label): x_t = alpha_t x_0 + sigma_t eps."""
        n = _checks.check_positive_int(n, "n")
        t = _checks.check_time(t, self.schedule)
        rng = _checks.check_rng(rng)
        comps = rng.choice(self.n_components, size=n, p=self._weights)
        x0 = self._means[comps] + self._cov.sample_deviation(comps, rng)
        a = float(self.schedule.alpha(t))
        s = float(self.schedule.sigma(t))
        x = a * x0 + s * rng.standard_normal(x0.shape)
        labels = None if self._codes is None or self._classes is None else self._classes[self._codes[comps]]
        return Draws(x=x, x0=x0, components=comps, labels=labels, t=t)
