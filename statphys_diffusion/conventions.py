r"""Converters between the time and prediction conventions of different libraries.

Two schedules describe the same noisy state when their signal-to-noise ratios
alpha^2 / sigma^2 agree; the states then differ only by a scale:
if snr_A(t_A) = snr_B(t_B) then x_B = (alpha_B(t_B) / alpha_A(t_A)) x_A in
distribution. Everything here rests on that identity (Kingma et al. 2021,
"Variational diffusion models", sec. 4; Karras et al. 2022, "Elucidating the
design space", table 1).

Prediction targets of a network at (x_t, t) with x_t = alpha x_0 + sigma eps:
``eps`` (noise), ``x0`` (denoiser), ``v = alpha eps - sigma x0`` (Salimans & Ho
2022), ``score = -eps / sigma``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .schedules import DiscreteSchedule, Schedule

__all__ = [
    "match_time",
    "MatchedTime",
    "edm_sigma_of_time",
    "time_of_edm_sigma",
    "ddpm_index_to_time",
    "time_to_ddpm_index",
    "convert_prediction",
    "denoiser_from_score",
    "PREDICTION_KINDS",
]

PREDICTION_KINDS = ("eps", "x0", "v", "score")


class MatchedTime(NamedTuple):
    """Output of :func:`match_time`; unpacks as ``(t, scale)``."""

    t: Any
    """float or ndarray: the time in the target schedule with the same snr."""
    scale: Any
    """float or ndarray: alpha_target(t_target) / alpha_source(t); x_source maps to scale * x_source."""


def match_time(t, source: Schedule, target: Schedule) -> MatchedTime:
    """Time in ``target`` with the same snr as ``t`` in ``source``, and the state scale.

    snr_target(t_target) = snr_source(t) (Kingma et al. 2021, sec. 4), and then
    x_target = (alpha_target(t_target) / alpha_source(t)) x_source in distribution.

    Returns
    -------
    MatchedTime
        ``t`` (float or ndarray, the target time) and ``scale`` (float or ndarray,
        alpha_target(t_target) / alpha_source(t)); unpacks as ``t_target, scale``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> vp, ou = sd.VPSDE(), sd.OrnsteinUhlenbeck()
    >>> t_ou, scale = sd.match_time(0.5, vp, ou)
    >>> bool(np.isclose(ou.snr(t_ou), vp.snr(0.5)) and np.isclose(scale, ou.alpha(t_ou) / vp.alpha(0.5)))
    True
    """
    snr = np.asarray(source.snr(t), dtype=np.float64)
    t_target = np.full(snr.shape, float(target.t_min))
    finite = np.isfinite(snr)
    if np.any(finite):
        t_target[finite] = target.t_of_snr(snr[finite])
    out = t_target if t_target.ndim else float(t_target)
    scale = target.alpha(out) / source.alpha(t)
    return MatchedTime(out, scale)


def edm_sigma_of_time(t, schedule: Schedule):
    """EDM noise level sigma_t / alpha_t = snr^{-1/2} (the VE-equivalent sigma).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.DiscreteSchedule.linear(1000)
    >>> s = sd.edm_sigma_of_time(500.0, sch)
    >>> bool(np.isclose(s, sch.sigma(500.0) / sch.alpha(500.0)))  # x_t / alpha = x_0 + (sigma / alpha) z
    True
    >>> bool(np.isclose(sd.time_of_edm_sigma(s, sch), 500.0))  # and back
    True
    """
    return np.exp(-0.5 * schedule.log_snr(t))


def time_of_edm_sigma(sigma, schedule: Schedule):
    """Inverse of :func:`edm_sigma_of_time`.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.VPSDE()
    >>> t = sd.time_of_edm_sigma(np.array([0.5, 2.0]), sch)
    >>> bool(np.allclose(sd.edm_sigma_of_time(t, sch), [0.5, 2.0]))
    True
    """
    s = np.asarray(sigma, dtype=np.float64)
    if np.any(~(s > 0)):
        raise ValueError("sigma must be positive")
    return schedule.t_of_snr(1.0 / (s * s))


def ddpm_index_to_time(k, source: DiscreteSchedule, target: Schedule | None = None):
    """DDPM integer index k of ``source`` -> time in ``target`` (default: ``source``'s own t = k + 1)."""
    t = source.index_to_time(k)
    if target is None or target is source:
        return t
    return match_time(t, source, target)[0]


def time_to_ddpm_index(t, source: Schedule, target: DiscreteSchedule, *, round_to_int: bool = True):
    """Time in ``source`` -> nearest DDPM index of ``target`` with the same snr.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> ddpm, vp = sd.DiscreteSchedule.linear(1000), sd.VPSDE()
    >>> t_vp = sd.ddpm_index_to_time(41, ddpm, vp)  # DDPM step index 41 as a VP-SDE time
    >>> int(sd.time_to_ddpm_index(t_vp, vp, ddpm))  # and back
    41
    """
    t_target = match_time(t, source, target)[0]
    return target.time_to_index(np.clip(t_target, 1.0, target.t_max), round_to_int=round_to_int)


def convert_prediction(value, x, t, schedule: Schedule, *, source: str, target: str):
    """Convert a network output between ``eps``, ``x0``, ``v`` and ``score``.

    Parameters
    ----------
    value, x : ndarray, same shape
        The prediction and the noisy input x_t.
    t : float
        Time in ``schedule``.
    source, target : {"eps", "x0", "v", "score"}

    Notes
    -----
    With x = a x0 + s eps and v = a eps - s x0 (any schedule, VP or not):
    eps = (s x + a v) / (a^2 + s^2), x0 = (a x - s v) / (a^2 + s^2),
    score = -eps / s.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.DiscreteSchedule.linear(1000)
    >>> rng = np.random.default_rng(0)
    >>> x0, eps = rng.standard_normal((2, 3, 4))
    >>> t = 300.0
    >>> x = sch.alpha(t) * x0 + sch.sigma(t) * eps
    >>> bool(np.allclose(sd.convert_prediction(eps, x, t, sch, source="eps", target="x0"), x0))
    True
    >>> bool(np.allclose(sd.convert_prediction(x0, x, t, sch, source="x0", target="eps"), eps))
    True
    """
    for name, kind in (("source", source), ("target", target)):
        _checks.check_choice(kind, PREDICTION_KINDS, name)
    value = _checks.as_float_array(value, "value")
    x = _checks.as_float_array(x, "x")
    if value.shape != x.shape:
        raise ValueError(f"value and x must have the same shape, got {value.shape} and {x.shape}")
    a = float(schedule.alpha(t))
    s = float(schedule.sigma(t))
    if source == target:
        return value
    if source == "eps":
        eps = value
    elif source == "x0":
        if s == 0:
            raise ValueError("t must have sigma_t > 0 to convert from x0")
        eps = (x - a * value) / s
    elif source == "v":
        eps = (s * x + a * value) / (a * a + s * s)
    else:
        eps = -s * value
    if target == "eps":
        return eps
    if target == "score":
        if s == 0:
            raise ValueError("t must have sigma_t > 0 to convert to a score")
        return -eps / s
    if a == 0:
        raise ValueError("t must have alpha_t > 0 to recover x0")
    x0 = (x - s * eps) / a
    if target == "x0":
        return x0
    return a * eps - s * x0


def denoiser_from_score(x, score, t, schedule: Schedule) -> np.ndarray:
    r"""Tweedie's formula: the posterior mean from the score, D_t(x) = (x + sigma_t^2 s_t(x)) / alpha_t.

    E[x_0 | x_t = x] for x_t = alpha_t x_0 + sigma_t eps (Efron 2011, "Tweedie's formula and
    selection bias"; Vincent 2011 for denoising score matching). The package's one home of the
    formula: the samplers' final denoising step, the guidance wrappers' denoisers and the exact
    mixtures' float64 denoiser all call it.

    Parameters
    ----------
    x, score : ndarray, same shape (M, d)
        The noisy points and the score at them (any float dtype; the arithmetic follows numpy's
        promotion, so float64 inputs give float64).
    t : float
        A time of ``schedule`` with alpha_t > 0.
    schedule : Schedule
    """
    if np.shape(x) != np.shape(score):
        raise ValueError(f"score must have the shape of x {np.shape(x)}, got {np.shape(score)}")
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    if a == 0:
        raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
    return (x + s2 * score) / a
