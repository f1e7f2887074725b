r"""Negative guidance: remove classes from a diffusion model at sampling time (result 3).

Every object here wraps a labelled score model (exact mixture or wrapped network
with ``score(x, t[, y])``) and is itself a score model (``schedule``, ``dim``,
``score``, ``denoise``), so any sampler drives it.

- :class:`NegativePrompting`: a constant scale w >= 0,
  s~ = s - w sum_{c in C} (s(x | c) - s(x)).
- :class:`SafeLatentDiffusion` (Schramowski et al., CVPR 2023): in noise space
  (eps = -sigma s), with d = eps(x) - eps(x | c), the guidance
  g = mu * (eps(x | c) - eps(x)), mu = min(1, s_S |d|) where d < threshold and 0
  elsewhere (elementwise), plus momentum: g <- g + s_m nu, nu <- beta_m nu +
  (1 - beta_m) g; eps~ = eps - scale g after ``warmup_steps`` calls. Stateful
  (one call per sampler step; :meth:`reset` between runs).
- :class:`DynamicNegativeGuidance` (Koulischer, Deleu, Raya, Demeester &
  Ambrogioni, ICLR 2025): since p_t(x | not C) = (p_t(x) - sum_{c in C} pi_c
  p_t(x | c)) / (1 - pi_C) at every t (the forward kernel is linear),

      grad log p_t(x | not C) = s(x) - sum_{c in C} w_c (s(x | c) - s(x)),
      w_c = p_t(c | x) / (1 - p_t(C | x)),

  exact with the exact posterior (``posterior="exact"``). With
  ``posterior="online"`` p_t(c | x) is tracked along the DDPM chain by Bayes'
  rule, as in the reference implementation (FelixKoulischer/Dynamic-Negative-
  Guidance): p <- p exp((-T Delta + offset) / (2 s_n^2)), Delta = |x_n - m_c|^2
  - |x_n - m|^2 with the unguided conditional and unconditional kernel means,
  then clamped to [p_min, p_max]; the guidance is scale * p / (1 - p).
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .citations import references
from .conventions import denoiser_from_score
from .online_posterior import ddpm_class_log_ratio
from .protocols import LabelledScoreModel, ScoreModel, require, satisfies
from .samplers import _ddpm_kernel

__all__ = ["NegativePrompting", "SafeLatentDiffusion", "DynamicNegativeGuidance"]


def _removed(model, removed) -> list:
    classes = getattr(model, "classes", None)
    if classes is None:
        raise ValueError("model must be labelled (have classes) to remove a class")
    rem = list(np.atleast_1d(np.asarray(removed)).tolist())
    if not rem:
        raise ValueError("removed must name at least one class")
    known = set(np.asarray(classes).tolist())
    bad = [c for c in rem if c not in known]
    if bad:
        raise ValueError(f"removed classes {bad} are not classes of the model (classes: {sorted(known)})")
    if len(set(rem)) != len(rem):
        raise ValueError("removed lists a class twice")
    if set(rem) == known:
        raise ValueError("removed names every class: nothing would be left to sample")
    return rem


def _scale(value, name: str = "scale") -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


class _Guided:
    """Common wrapper: schedule, dim, and the denoiser from the guided score (Tweedie)."""

    def __init__(self, model, removed):
        require(model, ScoreModel, purpose="guidance combines conditional and unconditional scores")
        self.model = model
        self.removed = _removed(model, removed)
        self.schedule = model.schedule

    @property
    def dim(self):
        return self.model.dim

    @property
    def classes(self):
        return self.model.classes

    @property
    def clip_denoised(self):
        """The wrapped model's sampling clip (samplers clip the guided denoiser to it, as diffusers does)."""
        return getattr(self.model, "clip_denoised", None)

    def denoise(self, x, t) -> np.ndarray:
        """(x + sigma_t^2 s~(x)) / alpha_t with the guided score s~."""
        t = _checks.check_time(t, self.schedule)
        return denoiser_from_score(np.asarray(x, dtype=np.float64), self.score(x, t), t, self.schedule)

    def score(self, x, t) -> np.ndarray:  # pragma: no cover - each guidance defines it
        """The guided score s~(x) at time t, (M, d)."""
        raise NotImplementedError

    def _scores(self, x, t):
        s = np.asarray(self.model.score(x, t), dtype=np.float64)
        sc = [np.asarray(self.model.score(x, t, y=c), dtype=np.float64) for c in self.removed]
        return s, sc


@references("koulischer2025")
class NegativePrompting(_Guided):
    """Constant negative guidance s - w sum_c (s(x | c) - s(x)) (the baseline of Koulischer et al.).

    Parameters
    ----------
    model : labelled score model
    removed : class label or list of labels
    scale : float >= 0 (w)
    """

    def __init__(self, model, removed, scale: float = 1.0):
        super().__init__(model, removed)
        self.scale = _scale(scale)

    def __repr__(self) -> str:
        return f"NegativePrompting(removed={self.removed}, scale={self.scale})"

    def score(self, x, t) -> np.ndarray:
        s, sc = self._scores(x, t)
        return s - self.scale * sum(c - s for c in sc)


@references("schramowski2023")
class SafeLatentDiffusion(_Guided):
    """Safe latent diffusion guidance (Schramowski et al. 2023), stateful over sampler steps.

    Parameters
    ----------
    model, removed : as for :class:`NegativePrompting`
    scale : overall scale of the safety term (the reference DNG code's guidance_scale)
    threshold : guidance acts only where eps(x) - eps(x | c) < threshold (default 0.04)
    s_s : slope of the elementwise scale min(1, s_s |d|) (default 100)
    s_m : momentum scale (default 0.1)
    beta_m : momentum decay (default 0.2)
    warmup_steps : calls before the guidance is applied (momentum still builds; default 0)

    Defaults are those of the DNG reference code's SLD baseline; the diffusers
    "MEDIUM" preset is s_s = 1000, threshold = 0.01, s_m = 0.3, beta_m = 0.4,
    warmup_steps = 10 (of 50 steps).
    """

    def __init__(
        self,
        model,
        removed,
        scale: float = 1.0,
        *,
        threshold: float = 0.04,
        s_s: float = 100.0,
        s_m: float = 0.1,
        beta_m: float = 0.2,
        warmup_steps: int = 0,
    ):
        super().__init__(model, removed)
        self.scale = _scale(scale)
        self.threshold = float(threshold)
        self.s_s = _scale(s_s, "s_s")
        self.s_m = _scale(s_m, "s_m")
        if not 0 <= beta_m < 1:
            raise ValueError(f"beta_m must lie in [0, 1), got {beta_m}")
        self.beta_m = float(beta_m)
        if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)
        self.reset()

    def __repr__(self) -> str:
        return f"SafeLatentDiffusion(removed={self.removed}, scale={self.scale}, s_s={self.s_s})"

    def reset(self) -> None:
        """Forget the momentum and the step count (call between sampling runs)."""
        self._momentum: np.ndarray | None = None
        self._calls = 0

    def score(self, x, t) -> np.ndarray:
        s, sc = self._scores(x, t)
        sigma = float(self.schedule.sigma(t))
        eps = -sigma * s
        momentum = self._momentum
        if momentum is None or momentum.shape != eps.shape:
            momentum = np.zeros_like(eps)
        g_total = np.zeros_like(eps)
        for s_c in sc:
            diff = eps - (-sigma * s_c)  # eps(x) - eps(x | c)
            mu = np.where(diff < self.threshold, np.minimum(1.0, self.s_s * np.abs(diff)), 0.0)
            g_total += -mu * diff  # mu (eps(x | c) - eps(x))
        g = g_total + self.s_m * momentum
        self._momentum = self.beta_m * momentum + (1 - self.beta_m) * g
        self._calls += 1
        if self._calls <= self.warmup_steps:
            return s
        return -(eps - self.scale * g) / sigma


@references("koulischer2025")
class DynamicNegativeGuidance(_Guided):
    """Dynamic negative guidance: scale w_t(x) = p_t(c | x) / (1 - p_t(C | x)) (Koulischer et al. 2025).

    Parameters
    ----------
    model, removed : as for :class:`NegativePrompting`
    posterior : {"exact", "online"}
        ``exact`` needs ``model.class_posterior``; with scale 1 and no clamping
        the guided score is the exact score of p_t(x | not C). ``online``
        tracks p along a DDPM ancestral chain (one :meth:`score` call per step,
        times decreasing; it restarts when t increases or the batch changes).
    scale : overall multiplier of w (default 1: exact)
    prior : float or None
        p at the first step (online). Default: the model's class weight pi_c.
        The reference example run uses 0.01.
    temperature : multiplies the squared-distance difference (online; default 1
        = Bayes' rule; the reference example uses 0.2, a smoother, slower update).
    offset : added to -T Delta before dividing by 2 s_n^2 (online; default 0;
        reference example 2e-4: a small drift of p upwards at every step).
    p_min, p_max : clamping of the online p (defaults 1e-6 and 0.99, those of the reference
        code: without a cap a few chains whose p runs to 1 get a scale of 1e12 and are
        thrown far away; the reference example run uses p_max = 0.8, capping w at 4 x scale).
        The exact posterior is never clamped.
    """

    def __init__(
        self,
        model,
        removed,
        *,
        posterior: str = "exact",
        scale: float = 1.0,
        prior: float | None = None,
        temperature: float = 1.0,
        offset: float = 0.0,
        p_min: float = 1e-6,
        p_max: float = 0.99,
    ):
        super().__init__(model, removed)
        _checks.check_choice(posterior, ("exact", "online"), "posterior")
        if posterior == "exact" and not satisfies(model, LabelledScoreModel):
            raise ValueError("posterior='exact' needs model.class_posterior; use posterior='online' for networks")
        self.posterior = posterior
        self.scale = _scale(scale)
        self.temperature = _scale(temperature, "temperature")
        self.offset = float(offset)
        if not (0 <= p_min < p_max < 1):
            raise ValueError(f"need 0 <= p_min < p_max < 1, got p_min={p_min}, p_max={p_max}")
        self.p_min, self.p_max = float(p_min), float(p_max)
        if prior is None:
            cw = getattr(model, "class_weights", None)
            if cw is None:
                raise ValueError("give prior= (the model has no class_weights)")
            classes = list(np.asarray(model.classes).tolist())
            prior_vec = np.array([float(cw[classes.index(c)]) for c in self.removed])
        else:
            prior_vec = np.broadcast_to(np.asarray(prior, dtype=np.float64), (len(self.removed),)).copy()
        if np.any(prior_vec <= 0) or np.any(prior_vec >= 1) or prior_vec.sum() >= 1:
            raise ValueError("prior must lie in (0, 1) per removed class, with sum below 1")
        self.prior = prior_vec
        self.reset()

    def __repr__(self) -> str:
        return f"DynamicNegativeGuidance(removed={self.removed}, posterior={self.posterior!r}, scale={self.scale})"

    def reset(self) -> None:
        """Restart the online posterior (the next call starts from the prior)."""
        self._p: np.ndarray | None = None
        self._prev: tuple[np.ndarray, float, np.ndarray, list[np.ndarray]] | None = None  # (x, t, D, [D_c]) last call
        self._residuals: list[float] = []  # |x_n - m|^2 / (d s_n^2) of the first updates: ~1 under DDPM steps
        self._warned = False

    @property
    def tracked_posterior(self) -> np.ndarray | None:
        """Current online estimate of p(c | chain), shape (M, n_removed), or None."""
        return None if self._p is None else self._p.copy()

    def _exact_safe_score(self, x, t) -> np.ndarray:
        """s - sum_c w_c (s_c - s) in the cancellation-free form sum_{k not in C} p(k|x) s_k / sum_{k not in C} p(k|x).

        The two are equal (s = sum_k p(k|x) s_k); the guidance form loses about
        eps / (1 - p(C | x)) relative accuracy deep inside a removed class.
        """
        post = self.model.class_posterior(x, t)
        classes = list(np.asarray(self.model.classes).tolist())
        kept = [j for j, c in enumerate(classes) if c not in self.removed]
        num = 0.0
        for j in kept:
            num = num + post[:, [j]] * np.asarray(self.model.score(x, t, y=classes[j]), dtype=np.float64)
        return num / np.maximum(post[:, kept].sum(axis=1, keepdims=True), 1e-300)

    def guidance_form_score(self, x, t) -> np.ndarray:
        """s - sum_c w_c (s_c - s) with the exact posterior, evaluated literally (for checks and scale != 1)."""
        s, sc = self._scores(x, t)
        w = self.weights(x, t)
        return s - sum(w[:, [j]] * (s_c - s) for j, s_c in enumerate(sc))

    def weights(self, x, t) -> np.ndarray:
        """w_c = scale p_c / (1 - sum_C p), shape (M, n_removed), for the exact posterior."""
        post = self.model.class_posterior(x, t)
        classes = list(np.asarray(self.model.classes).tolist())
        idx = [classes.index(c) for c in self.removed]
        kept = np.delete(post, idx, axis=1).sum(axis=1, keepdims=True)  # 1 - p(C | x) without cancellation
        return self.scale * post[:, idx] / np.maximum(kept, 1e-300)

    def _online_update(self, x, t, s, sc) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        prev = self._prev
        if prev is not None and prev[0].shape == x.shape and t == prev[1]:
            raise ValueError(
                f"online DNG was called twice at t={t}: it tracks p(c | x) through DDPM ancestral steps, one call "
                "per step at decreasing times (a multi-stage sampler such as Heun evaluates the score twice per "
                "step); use samplers.DDPMAncestral, or posterior='exact' with an exact model"
            )
        restart = prev is None or prev[0].shape != x.shape or t > prev[1]
        if restart:
            self._residuals = []
        if restart or prev is None or self._p is None:
            p = np.broadcast_to(self.prior, (x.shape[0], len(self.removed))).copy()
        else:
            x_prev, t_prev, d_prev, dc_prev = prev
            cx, c0, var = _ddpm_kernel(self.schedule, t_prev, t)
            p = self._p.copy()
            if var > 0:
                mean = cx * x_prev + c0 * d_prev
                self._check_ddpm_steps(x, mean, var)
                # log N(x; m_c) - log N(x; m) = -(|x - m_c|^2 - |x - m|^2) / (2 var), tempered and offset
                log_ratio = ddpm_class_log_ratio(x - mean, [c0 * (d_c - d_prev) for d_c in dc_prev], var)
                with np.errstate(over="ignore"):
                    p = p * np.exp(self.temperature * log_ratio + self.offset / (2 * var))
            p = np.clip(p, self.p_min, self.p_max)
        # unguided denoisers from the scores already computed (Tweedie)
        d_now = denoiser_from_score(x, s, t, self.schedule)
        dc_now = [denoiser_from_score(x, s_c, t, self.schedule) for s_c in sc]
        self._prev = (x.copy(), t, d_now, dc_now)
        self._p = p
        return p

    def _check_ddpm_steps(self, x, mean, var) -> None:
        """Warn once if the chain's steps do not look like DDPM ancestral draws around the kernel mean.

        Under DDPMAncestral, x_n - m(x_{n+1}) is N(0, s_n^2 I), so |x_n - m|^2 / (d s_n^2) is about 1;
        a deterministic sampler (DDIM with eta = 0, ODE solvers) gives a much smaller ratio, and the
        tracked posterior is then wrong (13% of the removed class leaks under Heun against 1.8%).
        """
        if self._warned or len(self._residuals) >= 5:
            return
        self._residuals.append(float(np.mean(np.sum((x - mean) ** 2, axis=1)) / (x.shape[1] * var)))
        if len(self._residuals) >= 3:
            r = float(np.mean(self._residuals))
            if not 0.25 < r < 4.0:
                import warnings

                warnings.warn(
                    f"online DNG assumes DDPM ancestral steps, but the chain's steps have |x_n - m|^2 / (d s_n^2) = "
                    f"{r:.3g} (about 1 for DDPM): its posterior is not tracked correctly under this sampler; use "
                    "samplers.DDPMAncestral",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self._warned = True

    def score(self, x, t) -> np.ndarray:
        if self.posterior == "exact" and self.scale == 1.0:
            return self._exact_safe_score(x, t)
        s, sc = self._scores(x, t)
        if self.posterior == "exact":
            w = self.weights(x, t)
        else:
            p = self._online_update(x, t, s, sc)
            w = self.scale * p / np.maximum(1.0 - p.sum(axis=1, keepdims=True), 1e-300)
        return s - sum(w[:, [j]] * (s_c - s) for j, s_c in enumerate(sc))
