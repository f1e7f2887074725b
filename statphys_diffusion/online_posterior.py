r"""The optimal Bayes classifier computed online along a discrete reverse chain.

A DDPM ancestral chain moves x_{n+1} -> x_n with the Gaussian kernel
N(m(x_{n+1}), s_n^2 I), m = c_x x_{n+1} + c_0 D(x_{n+1}) (the posterior
q(x_n | x_{n+1}, x_0) with x_0 replaced by the denoiser). Conditioning on a
class c replaces D by the class-conditional denoiser D(x, c), giving
m_c. Bayes' rule along the chain (docs/user_guide/result1_semantic_information.md; the
update used by Dynamic Negative Guidance, Koulischer et al. ICLR 2025) is

    log p_n(c) = log p_{n+1}(c) - ( |x_n - m_c|^2 - |x_n - m|^2 ) / (2 s_n^2),

renormalised over classes. Since m_c - m = c_0 (D(x, c) - D(x)), the update
only needs the denoiser differences. With exact denoisers and vanishing step
size the tracked posterior tends to the exact p_t(c | x_t) (the forward chain
y -> x_0 -> x_t -> x_t' is Markov, so p(c | x_T, ..., x_t) = p(c | x_t)); at
finite steps the Gaussian kernels are approximations and so is the posterior.

Two estimators (``run(..., chains=...)``):

- ``"null"`` (default): chains from the unconditional kernel, Bayes' rule from the
  differences between each conditional kernel and the unconditional one (above);
- ``"joint"``: for each class c, ``n`` chains from the class-conditional kernel of c, with
  p(c' | path) tracked from the conditional kernels only,
  log p_n(c') = log p_{n+1}(c') - |x_n - m_c'|^2 / (2 s_n^2) + const.
  That is the exact posterior of the joint model "draw c' from the prior, then run the
  conditional chain of c'" that a class-conditional network defines on its own, with no
  unconditional (null) prediction involved (Handke et al. 2025). For an exact model both
  estimators converge to p_t(c | x_t); for a network they agree only where its null
  prediction is the posterior average of its conditional ones (the Bayes-consistency
  residual of :func:`statphys_diffusion.regime_map`).

Works with anything that has ``schedule``, ``denoise(x, t)`` and
``denoise(x, t, y=c)`` (one class, or one class per row): exact models and wrapped
networks alike. The chains are samplers: where a model declares ``clip_denoised`` (a diffusers
scheduler's ``clip_sample``), their kernels use the clipped denoisers, as the pipeline does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from . import _checks
from ._progress import iterate
from ._results import TidyResult, axes, legend
from .citations import references
from .protocols import Denoiser, LabelledScoreModel, require, satisfies
from .samplers import DDPMAncestral, _ddpm_kernel, _denoise, _initial_state

__all__ = ["OnlineClassifier", "OnlineTrack"]


@dataclass(frozen=True, repr=False)
class OnlineTrack(TidyResult):
    """A reverse chain and the class posterior tracked along it.

    Attributes
    ----------
    times : (S + 1,) decreasing grid, times[0] = t_start
    x : (M, d) final states
    classes : (C,)
    log_posterior : (S + 1, M, C)
        log p_n(c) after each step (row 0: the prior at t_start).
    trajectory : (S + 1, M, d) or None
    labels : (M,) or None
        The class each chain was generated from (``chains="joint"``); None for null chains.
    """

    times: np.ndarray
    x: np.ndarray
    classes: np.ndarray
    log_posterior: np.ndarray
    trajectory: np.ndarray | None
    labels: np.ndarray | None = None

    @property
    def posterior(self) -> np.ndarray:
        """p_n(c), shape (S + 1, M, C)."""
        return np.exp(self.log_posterior)

    def to_rows(self) -> list[dict]:
        """One dict per (time, chain, class): ``t``, ``step`` (0 at t_start), ``chain``, ``class``,
        ``posterior`` and ``generated_from`` (the chain's label; None for null chains)."""
        post = self.posterior
        classes = [_checks.plain_label(c) for c in self.classes]
        gen = [None] * post.shape[1] if self.labels is None else [_checks.plain_label(v) for v in self.labels]
        return [
            {
                "t": float(t),
                "step": s,
                "chain": m,
                "class": c,
                "posterior": float(post[s, m, j]),
                "generated_from": gen[m],
            }
            for s, t in enumerate(self.times)
            for m in range(post.shape[1])
            for j, c in enumerate(classes)
        ]

    def plot(self, ax=None, *, chains: int = 20):
        """p_n(c) of the generating class (joint chains) or of the final argmax class (null chains)
        against t, for the first ``chains`` chains, and their mean in black; returns the Axes."""
        ax = axes(ax)
        post = self.posterior
        if self.labels is None:
            cls = post[-1].argmax(axis=1)
        else:
            index = {_checks.plain_label(c): j for j, c in enumerate(self.classes)}
            cls = np.array([index[_checks.plain_label(v)] for v in self.labels])
        p = post[:, np.arange(post.shape[1]), cls]  # (S + 1, M)
        ax.plot(self.times, p[:, :chains], color="C0", lw=0.6, alpha=0.5)
        ax.plot(self.times, p.mean(axis=1), "k-", lw=1.5, label="mean over chains")
        ax.set_xscale("log")
        ax.set_xlabel("t")
        which = "generating" if self.labels is not None else "final"
        ax.set_ylabel(f"posterior p_n(c) of the {which} class")
        legend(ax, fontsize=7)
        return ax

    def coarse(self, groups) -> OnlineTrack:
        """The tracked posterior of a coarse decision: p_n(g) = sum over the classes of group g.

        ``groups`` is a partition of :attr:`classes` (e.g. ``[[0, 1], [2, 3]]``); the result's
        classes are the group indices 0..G-1 (Handke et al. 2025's decision problems).
        """
        from .mixture import check_partition

        group_of = check_partition(groups, self.classes)
        n_groups = int(group_of.max()) + 1
        lp = np.stack([logsumexp(self.log_posterior[..., group_of == g], axis=-1) for g in range(n_groups)], axis=-1)
        labels = None if self.labels is None else group_of[np.searchsorted(self.classes, self.labels)]
        return OnlineTrack(
            times=self.times,
            x=self.x,
            classes=np.arange(n_groups),
            log_posterior=lp,
            trajectory=self.trajectory,
            labels=labels,
        )

    def restrict(self, classes) -> OnlineTrack:
        """The decision among a subset of the classes, on the chains generated inside it.

        The posterior renormalised over ``classes`` (p_n(c) / sum over the subset), kept for the
        chains generated from one of them (joint chains: ``labels``; null chains: the final
        tracked decision). For a partition into superclasses this is the fine decision given the
        superclass, e.g. airplane | automobile among vehicle chains (Handke et al. 2025).
        """
        sub = np.asarray(classes)
        if sub.ndim != 1 or sub.size < 2:
            raise ValueError("classes must be a 1-D array of at least 2 of the track's classes")
        idx = []
        for c in sub:
            hit = np.flatnonzero(self.classes == c)
            if hit.size != 1:
                raise ValueError(f"classes: {c!r} is not one of the track's classes {self.classes.tolist()}")
            idx.append(int(hit[0]))
        if len(set(idx)) != len(idx):
            raise ValueError("classes must not repeat a class")
        codes = np.array(idx)
        gen = self.labels if self.labels is not None else self.classes[np.argmax(self.log_posterior[-1], axis=1)]
        rows = np.flatnonzero(np.isin(gen, sub))
        if rows.size == 0:
            raise ValueError(f"no chain was generated in the classes {sub.tolist()}")
        lp = self.log_posterior[:, rows][..., codes]
        lp = lp - logsumexp(lp, axis=-1, keepdims=True)
        return OnlineTrack(
            times=self.times,
            x=self.x[rows],
            classes=sub,
            log_posterior=lp,
            trajectory=None if self.trajectory is None else self.trajectory[:, rows],
            labels=None if self.labels is None else self.labels[rows],
        )

    def entropy_rate(self, schedule, *, coarse: int = 1, n_bootstrap: int = 200, rng=None):
        """dH/dt of the tracked posterior with per-class peaks: :func:`~statphys_diffusion.track_entropy_rate`."""
        from .theory.entropy_rate import track_entropy_rate

        return track_entropy_rate(self, schedule, coarse=coarse, n_bootstrap=n_bootstrap, rng=rng)

    def entropy(self) -> np.ndarray:
        """Entropy of the tracked posterior per step and chain, shape (S + 1, M), nats."""
        p = self.posterior
        with np.errstate(invalid="ignore"):
            return -np.where(p > 0, p * self.log_posterior, 0.0).sum(axis=2)


def ddpm_class_log_ratio(r: np.ndarray, deltas, var: float) -> np.ndarray:
    """The Bayes update of the class posterior by one DDPM ancestral step, (M, C).

    A step draws x' ~ N(m, var I) with m = c_x x + c_0 D(x) (:func:`~statphys_diffusion.samplers._ddpm_kernel`);
    under class c its mean would be m_c = m + delta_c, delta_c = c_0 (D(x, c) - D(x)). With
    r = x' - m, the log-likelihood ratio of the step is

        log N(x'; m_c, var I) - log N(x'; m, var I) = -(|delta_c|^2 - 2 r . delta_c) / (2 var),

    written this way (not as a difference of two squared distances) so that it keeps its
    relative accuracy when delta_c is small against r. The one home of this update:
    :class:`OnlineClassifier` and the online posterior of
    :class:`~statphys_diffusion.DynamicNegativeGuidance` both call it.

    Parameters
    ----------
    r : (M, d) x' - m
    deltas : sequence of C arrays (M, d), delta_c
    var : float > 0, the step's variance
    """
    out = np.empty((r.shape[0], len(deltas)))
    for j, delta in enumerate(deltas):
        out[:, j] = -(np.einsum("ij,ij->i", delta, delta) - 2 * np.einsum("ij,ij->i", r, delta)) / (2 * var)
    return out


@references("handke2025")
class OnlineClassifier:
    """Generate with DDPM ancestral steps and track p(c | x_n) by Bayes' rule.

    Parameters
    ----------
    n_steps : int
    times : (S + 1,) decreasing array, optional
        Explicit grid (overrides ``n_steps``/``spacing``).
    spacing : {"uniform", "log_snr", ...}
        As for the samplers.
    prior : {"model", "uniform", "exact"} or (C,) array
        log p at t_start: the model's class weights, uniform, the exact
        posterior at x_start (exact models only), or given probabilities.
    progress : bool
    """

    def __init__(
        self, n_steps: int = 100, *, times=None, spacing: str = "uniform", prior="model", progress: bool = False
    ):
        self._grid_maker = DDPMAncestral(n_steps, times=times, spacing=spacing)
        self.prior = prior
        self.progress = bool(progress)

    def __repr__(self) -> str:
        return f"OnlineClassifier(n_steps={self._grid_maker.n_steps}, prior={self.prior!r})"

    def _log_prior(self, model, classes, x, t) -> np.ndarray:
        m, c = x.shape[0], classes.size
        if isinstance(self.prior, str):
            if self.prior == "uniform":
                p = np.full(c, 1.0 / c)
            elif self.prior == "model":
                cw = getattr(model, "class_weights", None)
                if cw is None:
                    raise ValueError("prior='model' needs model.class_weights; pass prior='uniform' or probabilities")
                p = np.asarray(cw, dtype=np.float64)
            elif self.prior == "exact":
                if not satisfies(model, LabelledScoreModel):
                    raise ValueError("prior='exact' needs model.class_posterior")
                with np.errstate(divide="ignore"):
                    return np.log(model.class_posterior(x, t))
            else:
                raise ValueError(f"prior must be 'model', 'uniform', 'exact' or probabilities, got {self.prior!r}")
        else:
            p = _checks.as_float_array(self.prior, "prior", dtype=np.float64, ndim=1)
            if p.shape != (c,) or np.any(p < 0) or abs(p.sum() - 1) > 1e-8:
                raise ValueError(f"prior must be {c} non-negative probabilities summing to 1")
        with np.errstate(divide="ignore"):
            return np.broadcast_to(np.log(p), (m, c)).copy()

    def run(
        self,
        model,
        x_init=None,
        *,
        n: int | None = None,
        t_start: float | None = None,
        t_end: float | None = None,
        rng: np.random.Generator | None = None,
        return_trajectory: bool = False,
        classes=None,
        chains: str = "null",
    ) -> OnlineTrack:
        """Run ``n`` chains (or from ``x_init``) from t_start to t_end, tracking the class posterior.

        ``classes`` defaults to ``model.classes``; give it for networks. ``chains="joint"`` runs
        ``n`` chains per class from the class-conditional kernels (``x_init``, if given, is
        used for every class) and tracks p(c | path) with the conditional kernels only (module
        docstring); the track's ``labels`` say which class generated each chain.
        """
        _checks.check_choice(chains, ("null", "joint"), "chains")
        require(model, Denoiser, purpose="the chains and Bayes' rule use denoise(x, t[, y])")
        cls = getattr(model, "classes", None) if classes is None else np.asarray(classes)
        if cls is None:
            raise ValueError("model has no classes (unlabelled): pass classes=... or label the model")
        cls = np.asarray(cls)
        if cls.ndim != 1 or cls.size < 2:
            raise ValueError("classes must be a 1-D array of at least 2 class labels")
        schedule = model.schedule
        grid = self._grid_maker._grid(schedule, t_start, t_end)
        x, rng = _initial_state(model, schedule, float(grid[0]), x_init, n, rng)
        x = x.astype(np.float64, copy=False)
        gen = None
        if chains == "joint":
            m0 = x.shape[0]
            if x_init is None:  # fresh starting noise for every class's chains
                more = [_initial_state(model, schedule, float(grid[0]), None, m0, rng)[0] for _ in cls[1:]]
                x = np.concatenate([x, *more]).astype(np.float64, copy=False)
            else:
                x = np.tile(x, (cls.size, 1))
            gen = np.repeat(cls, m0)
        logp = np.empty((grid.size, x.shape[0], cls.size))
        logp[0] = self._log_prior(model, cls, x, float(grid[0]))
        traj = np.empty((grid.size,) + x.shape) if return_trajectory else None
        if traj is not None:
            traj[0] = x
        steps = iterate(range(grid.size - 1), self.progress, "online classifier")
        for i in steps:
            t, t_next = float(grid[i]), float(grid[i + 1])
            cx, c0, var = _ddpm_kernel(schedule, t, t_next)
            # the generating denoiser: unconditional (null chains) or each chain's own class (joint;
            # taken from the per-class evaluations below, so each conditional runs once per step)
            d_cls = None
            if gen is None:
                d_all = np.asarray(_denoise(model, x, t), dtype=np.float64)
            else:
                d_cls = [np.asarray(_denoise(model, x, t, y=c), dtype=np.float64) for c in cls]
                d_all = np.empty_like(x)
                for j, c in enumerate(cls):
                    rows = gen == c
                    d_all[rows] = d_cls[j][rows]
            mean = cx * x + c0 * d_all
            x_new = mean + np.sqrt(var) * rng.standard_normal(x.shape)
            if var <= 0:  # deterministic last step (t_next = t_min with sigma = 0): no likelihood to update with
                logp[i + 1] = logp[i]
                x = x_new
                if traj is not None:
                    traj[i + 1] = x
                continue
            if d_cls is None:
                d_cls = [np.asarray(_denoise(model, x, t, y=c), dtype=np.float64) for c in cls]
            lp = logp[i] + ddpm_class_log_ratio(x_new - mean, [c0 * (d_c - d_all) for d_c in d_cls], var)
            logp[i + 1] = lp - logsumexp(lp, axis=1, keepdims=True)
            x = x_new
            if traj is not None:
                traj[i + 1] = x
        return OnlineTrack(times=grid, x=x, classes=cls, log_posterior=logp, trajectory=traj, labels=gen)
