r"""The protocols every analysis tool depends on, declared in code (docs/user_guide/conventions.rst, "API conventions").

A *score model* is anything with a forward-noising ``schedule`` (x_t = alpha_t x_0 + sigma_t
eps), a dimension ``dim`` and, for points x of shape (M, d) at a forward time t,

    score(x, t)   = grad log p_t(x),                       shape (M, d)
    denoise(x, t) = E[x_0 | x_t = x] = (x + sigma^2 s) / alpha  (Tweedie),  shape (M, d)

The exact models (:class:`~statphys_diffusion.GaussianMixture`,
:class:`~statphys_diffusion.EmpiricalDistribution`,
:class:`~statphys_diffusion.LinearManifold`), the guidance wrappers and the torch adapter
(:class:`~statphys_diffusion.nets.TorchScoreModel`) all satisfy it. Richer protocols add:

- :class:`LabelledScoreModel`: ``classes``, ``class_posterior(x, t)`` (M, C) and the
  conditional ``score(x, t, y=c)``/``denoise(x, t, y=c)`` (one class, or one per row);
- :class:`ConditionalDenoiser`: ``classes`` and ``denoise(x, t, y=c)`` only (networks: the
  posterior is not available pointwise; :class:`~statphys_diffusion.OnlineClassifier` tracks it);
- :class:`CurvatureModel`: ``hvp(x, t, v)``, the Hessian of log p_t times v;
- :class:`ExactMixture`: a Gaussian mixture's read-only ``components`` view
  (:class:`~statphys_diffusion.mixture.MixtureComponents`), ``component_posterior``,
  ``log_prob``, its moments, the dense ``hessian(x, t)`` / ``hessian_operator(x, t)`` and
  ``singular`` (some component has a singular covariance, e.g. an empirical point cloud: the
  score is undefined at t = t_min), ``n_components``, ``weights`` and
  ``relabel(groups)`` (the coarse-grained labelled mixture);
- :class:`ScoreFunction`: only ``schedule`` and ``score(x, t)``, what the SDE/ODE samplers need;
- :class:`DenoiseFunction`: only ``denoise(x, t)``, what the attractor census iterates;
- :class:`Moments`: ``mean()`` and ``covariance()`` of the data distribution;
- :class:`Samplable`: ``sample(n, t, *, rng=None)``, draws of (x_0, x_t, labels).

``typing.Protocol`` classes only check that the members exist; :func:`require` does that
once, at the entry of a public function, with an error that names the argument, the missing
members and what the function needs them for; :func:`satisfies` is the same test as a bool,
for functions that take a faster exact path when a model offers one.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Labelled",
    "DenoiseFunction",
    "ScoreFunction",
    "Denoiser",
    "ScoreModel",
    "LabelledScoreModel",
    "ConditionalDenoiser",
    "CurvatureModel",
    "ExactMixture",
    "Moments",
    "Samplable",
    "require",
    "satisfies",
]


@runtime_checkable
class Labelled(Protocol):
    """Has ``classes``: the class labels (None when the object is unlabelled)."""

    @property
    def classes(self) -> np.ndarray | None: ...


@runtime_checkable
class DenoiseFunction(Protocol):
    """Only ``denoise(x, t)``: iterating or differentiating a denoiser needs nothing else (a schedule,
    where the model has one, validates t)."""

    def denoise(self, x: np.ndarray, t: float) -> np.ndarray: ...


@runtime_checkable
class ScoreFunction(Protocol):
    """``schedule`` and ``score(x, t)``: what an SDE or ODE sampler integrates (Tweedie gives D_t)."""

    schedule: Any

    def score(self, x: np.ndarray, t: float) -> np.ndarray: ...


@runtime_checkable
class Denoiser(Protocol):
    """``schedule`` and ``denoise(x, t)``: enough for denoiser-only measurements (regime map, chains)."""

    schedule: Any

    def denoise(self, x: np.ndarray, t: float) -> np.ndarray: ...


@runtime_checkable
class ScoreModel(Protocol):
    """``schedule``, ``dim``, ``score(x, t)``, ``denoise(x, t)``: what every analysis needs."""

    schedule: Any

    @property
    def dim(self) -> int: ...

    def score(self, x: np.ndarray, t: float) -> np.ndarray: ...

    def denoise(self, x: np.ndarray, t: float) -> np.ndarray: ...


@runtime_checkable
class ConditionalDenoiser(ScoreModel, Protocol):
    """A score model with ``classes`` and ``denoise(x, t, y=c)`` (trained conditional networks)."""

    @property
    def classes(self) -> np.ndarray | None: ...

    def score(self, x: np.ndarray, t: float, y: Any = None) -> np.ndarray: ...

    def denoise(self, x: np.ndarray, t: float, y: Any = None) -> np.ndarray: ...


@runtime_checkable
class LabelledScoreModel(ConditionalDenoiser, Protocol):
    """A conditional model whose class posterior p_t(c | x) is available pointwise (exact models)."""

    def class_posterior(self, x: np.ndarray, t: float) -> np.ndarray: ...


@runtime_checkable
class CurvatureModel(ScoreModel, Protocol):
    """A score model with Hessian-vector products of log p_t: ``hvp(x, t, v)`` (M, d)."""

    def hvp(self, x: np.ndarray, t: float, v: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Moments(Protocol):
    """``mean()`` (d,) and ``covariance()`` (d, d) of the data distribution p_0."""

    def mean(self) -> np.ndarray: ...

    def covariance(self) -> np.ndarray: ...


@runtime_checkable
class Samplable(Protocol):
    """``sample(n, t, *, rng=None)``: n draws of the data and of the forward process at time t."""

    def sample(self, n: int, t: float = 0.0, *, rng: Any = None) -> Any: ...


@runtime_checkable
class ExactMixture(LabelledScoreModel, CurvatureModel, Moments, Samplable, Protocol):
    """A Gaussian mixture (or empirical point cloud) seen through its public component view.

    Besides the component view it offers the dense Hessian of log p_t, ``hessian(x, t)``
    (M, d, d), and a ``scipy.sparse.linalg.LinearOperator`` for it at one point,
    ``hessian_operator(x, t)``, which the curvature code uses instead of generic HVPs.
    """

    @property
    def components(self) -> Any: ...

    @property
    def means(self) -> np.ndarray: ...

    @property
    def covariances(self) -> np.ndarray: ...

    def component_posterior(self, x: np.ndarray, t: float) -> np.ndarray: ...

    def log_prob(self, x: np.ndarray, t: float) -> np.ndarray: ...

    def hessian(self, x: np.ndarray, t: float) -> np.ndarray: ...

    def hessian_operator(self, x: np.ndarray, t: float) -> Any: ...

    @property
    def singular(self) -> bool: ...

    @property
    def n_components(self) -> int: ...

    @property
    def weights(self) -> np.ndarray: ...

    def relabel(self, groups: Any) -> Any: ...


_MEMBERS: dict[type, tuple[str, ...]] = {
    Labelled: ("classes",),
    DenoiseFunction: ("denoise",),
    ScoreFunction: ("schedule", "score"),
    Denoiser: ("schedule", "denoise"),
    ScoreModel: ("schedule", "dim", "score", "denoise"),
    ConditionalDenoiser: ("schedule", "dim", "score", "denoise", "classes"),
    LabelledScoreModel: ("schedule", "dim", "score", "denoise", "classes", "class_posterior"),
    CurvatureModel: ("schedule", "dim", "score", "denoise", "hvp"),
    ExactMixture: (
        "schedule",
        "dim",
        "score",
        "denoise",
        "classes",
        "class_posterior",
        "hvp",
        "components",
        "means",
        "covariances",
        "component_posterior",
        "log_prob",
        "mean",
        "covariance",
        "sample",
        "hessian",
        "hessian_operator",
        "singular",
        "n_components",
        "weights",
        "relabel",
    ),
    Moments: ("mean", "covariance"),
    Samplable: ("sample",),
}


_ABSENT = object()


def _missing(model, protocol: type) -> list[str]:
    if protocol not in _MEMBERS:
        raise ValueError(f"protocol must be one of {[p.__name__ for p in _MEMBERS]}, got {protocol!r}")
    # getattr_static: a member is looked up without running it (``hasattr`` would evaluate a property,
    # e.g. a mixture's dense ``covariances``, (K, d, d): 70 GiB for the CIFAR-10 empirical model)
    return [m for m in _MEMBERS[protocol] if inspect.getattr_static(model, m, _ABSENT) is _ABSENT]


def satisfies(model, protocol: type) -> bool:
    """True when ``model`` has every member of ``protocol`` (the test :func:`require` makes).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> from statphys_diffusion.protocols import CurvatureModel, satisfies
    >>> satisfies(sd.GaussianMixture.isotropic([[0.0]], 1.0), CurvatureModel)
    True
    >>> satisfies(object(), CurvatureModel)
    False
    """
    return not _missing(model, protocol)


def require(model, protocol: type, *, name: str = "model", purpose: str = "", labelled: bool = False):
    """Check that ``model`` satisfies ``protocol``; return it, or raise a ValueError that says why.

    Parameters
    ----------
    model : object
    protocol : one of this module's protocols
    name : the argument's name in the error message
    purpose : what the caller needs the members for (appended to the message)
    labelled : also require ``model.classes`` to be set (not None): a labelled model

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> from statphys_diffusion.protocols import ScoreModel, require
    >>> gm = sd.GaussianMixture.isotropic([[0.0]], 1.0)
    >>> require(gm, ScoreModel) is gm
    True
    """
    missing = _missing(model, protocol)
    why = f" ({purpose})" if purpose else ""
    if missing:
        members = ", ".join(f"`{m}`" for m in _MEMBERS[protocol])
        raise ValueError(
            f"{name} must have {members} (a {protocol.__name__}{why}); {type(model).__name__} has no "
            + ", ".join(f"`{m}`" for m in missing)
        )
    if labelled and getattr(model, "classes", None) is None:
        raise ValueError(f"{name} must be labelled{why}: its `classes` is None (pass labels=... when building it)")
    return model
