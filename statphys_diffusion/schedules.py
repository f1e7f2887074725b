r"""Noise schedules of the forward process :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon`.

Every formula in the package takes a :class:`Schedule`; none hard-codes one.
Time runs forward (t = 0 is data). All schedule arithmetic is float64 whatever
the dtype of the data.

Schedules
---------
``OrnsteinUhlenbeck``  variance preserving, alpha = e^{-t} (the physics papers' convention)
``VPSDE``              Song et al. (2021) VP-SDE, linear beta(t) on t in [0, 1]
``DiscreteSchedule``   DDPM alphas_cumprod on integer steps, continuous in between
``VarianceExploding``  alpha = 1, sigma = t (EDM's sigma used as time)
``FlowMatching``       rectified-flow interpolant alpha = 1 - t, sigma = t

Each gives ``alpha(t)``, ``sigma(t)``, their time derivatives, ``snr(t)`` and the
inverse map ``t_of_snr``; and the coefficients of the forward SDE
``dx = f(t) x dt + g(t) dW``: ``f = d log alpha / dt``,
``g^2 = d sigma^2/dt - 2 f sigma^2``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

__all__ = [
    "Schedule",
    "OrnsteinUhlenbeck",
    "VPSDE",
    "DiscreteSchedule",
    "VarianceExploding",
    "FlowMatching",
]


def _snr_arg(snr) -> np.ndarray:
    s = np.asarray(snr, dtype=np.float64)
    if np.any(~(s > 0)):
        raise ValueError("snr must be positive (and not NaN)")
    return s


def _scalar_or_array(out: np.ndarray):
    return out if out.ndim else float(out)


def _as_t(t) -> np.ndarray:
    raw = t if isinstance(t, (float, int)) and not isinstance(t, bool) else np.asarray(t)
    if not isinstance(raw, (float, int)) and raw.dtype.kind not in "fiu":
        raise TypeError(f"t must be real numbers, got {t!r} (dtype {raw.dtype})")
    arr = np.asarray(raw, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("t contains NaN or inf")
    return arr


class Schedule(ABC):
    """Base class: subclasses give ``log_alpha``, ``sigma2`` and their derivatives.

    Attributes
    ----------
    t_min, t_max : float
        Range of valid times (``t_max`` may be ``inf``).
    variance_preserving : bool
        ``alpha^2 + sigma^2 = 1``.
    """

    t_min: float = 0.0
    t_max: float = math.inf
    variance_preserving: bool = True

    # -- primitives --------------------------------------------------------------
    @abstractmethod
    def _log_alpha(self, t: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _dlog_alpha(self, t: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _sigma2(self, t: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _dsigma2(self, t: np.ndarray) -> np.ndarray: ...

    def _check_range(self, t: np.ndarray) -> None:
        if np.any(t < self.t_min) or np.any(t > self.t_max):
            raise ValueError(
                f"t must lie in [{self.t_min}, {self.t_max}] for {self!r}, got "
                f"values in [{float(np.min(t))}, {float(np.max(t))}]"
            )

    def _eval(self, fn, t):
        arr = _as_t(t)
        self._check_range(arr)
        return fn(arr)

    # -- public coefficients ---------------------------------------------------
    def alpha(self, t):
        """Signal scale alpha_t."""
        return self._eval(lambda s: np.exp(self._log_alpha(s)), t)

    def log_alpha(self, t):
        return self._eval(self._log_alpha, t)

    def sigma(self, t):
        """Noise scale sigma_t."""
        return self._eval(lambda s: np.sqrt(self._sigma2(s)), t)

    def sigma2(self, t):
        return self._eval(self._sigma2, t)

    def dalpha(self, t):
        """d alpha_t / dt."""
        return self._eval(lambda s: np.exp(self._log_alpha(s)) * self._dlog_alpha(s), t)

    def dsigma(self, t):
        """d sigma_t / dt (infinite where sigma_t = 0 and d sigma^2/dt > 0)."""

        def f(s):
            with np.errstate(divide="ignore", invalid="ignore"):
                return self._dsigma2(s) / (2.0 * np.sqrt(self._sigma2(s)))

        return self._eval(f, t)

    def snr(self, t):
        """Signal-to-noise ratio alpha_t^2 / sigma_t^2 (inf at sigma = 0)."""
        return self._eval(lambda s: np.exp(self._log_snr(s)), t)

    def log_snr(self, t):
        return self._eval(self._log_snr, t)

    def _log_snr(self, t):
        with np.errstate(divide="ignore"):
            return 2.0 * self._log_alpha(t) - np.log(self._sigma2(t))

    def drift_coefficient(self, t):
        """f(t) = d log alpha_t / dt of the forward SDE dx = f x dt + g dW."""
        return self._eval(self._dlog_alpha, t)

    def diffusion2(self, t):
        """g(t)^2 = d sigma^2/dt - 2 f sigma^2 of the forward SDE."""
        return self._eval(lambda s: self._dsigma2(s) - 2.0 * self._dlog_alpha(s) * self._sigma2(s), t)

    def t_of_snr(self, snr):
        """Inverse of :meth:`snr`: the time at which alpha^2/sigma^2 = snr.

        The base implementation bisects log snr (monotone decreasing) to 1e-13
        relative accuracy; subclasses with a closed form override it.
        """
        s = _snr_arg(snr)
        target = np.log(s)
        lo = np.full(s.shape, self.t_min, dtype=np.float64)
        hi_val = self.t_max if np.isfinite(self.t_max) else 1.0
        hi = np.full(s.shape, hi_val, dtype=np.float64)
        if not np.isfinite(self.t_max):
            for _ in range(2000):
                grow = self._log_snr(hi) > target
                if not np.any(grow):
                    break
                hi = np.where(grow, hi * 2.0, hi)
        lmin = self._log_snr(np.asarray(self.t_max if np.isfinite(self.t_max) else hi))
        lmax = self._log_snr(np.asarray(self.t_min))
        if np.any(target < lmin - 1e-12) or np.any(target > lmax + 1e-12):
            raise ValueError(
                f"snr outside the range reachable by {self!r}: [{math.exp(np.min(lmin))}, {math.exp(np.max(lmax))}]"
            )
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            above = self._log_snr(mid) > target
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
            if np.all(hi - lo <= 1e-13 * np.maximum(1.0, np.abs(hi))):
                break
        out = 0.5 * (lo + hi)
        return _scalar_or_array(out)

    def time_grid(self, n_steps: int, t_start: float | None = None, t_end: float | None = None) -> np.ndarray:
        """Decreasing grid of ``n_steps + 1`` times from t_start to t_end, uniform in t."""
        t0 = self.default_t_start if t_start is None else float(t_start)
        t1 = self.t_min if t_end is None else float(t_end)
        return np.linspace(t0, t1, int(n_steps) + 1)

    @property
    def default_t_start(self) -> float:
        """Time from which samplers start by default (data nearly forgotten)."""
        return float(self.t_max)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class OrnsteinUhlenbeck(Schedule):
    r"""Variance-preserving OU schedule, alpha_t = e^{-t}, sigma_t^2 = 1 - e^{-2t}.

    Forward SDE dx = -x dt + sqrt(2) dW, the convention of Raya & Ambrogioni
    (NeurIPS 2023) and Biroli et al. (2024). ``t_of_snr(snr) = 1/2 log(1 + 1/snr)``.
    ``default_t_start`` is 10 (alpha^2 = 2e-9).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.OrnsteinUhlenbeck()
    >>> t = np.array([0.1, 1.0, 3.0])
    >>> bool(np.allclose(sch.alpha(t), np.exp(-t)) and np.allclose(sch.sigma(t) ** 2, 1 - np.exp(-2 * t)))
    True
    """

    def _log_alpha(self, t):
        return -t

    def _dlog_alpha(self, t):
        return -np.ones_like(t)

    def _sigma2(self, t):
        return -np.expm1(-2.0 * t)

    def _dsigma2(self, t):
        return 2.0 * np.exp(-2.0 * t)

    def t_of_snr(self, snr):
        s = _snr_arg(snr)
        out = 0.5 * np.log1p(1.0 / s)
        return _scalar_or_array(out)

    @property
    def default_t_start(self) -> float:
        return 10.0


class VPSDE(Schedule):
    r"""Song et al. (2021) VP-SDE: beta(t) = beta_min + t (beta_max - beta_min), t in [0, T].

    log alpha_t = -1/2 (beta_min t + (beta_max - beta_min) t^2 / (2 T)),
    sigma^2 = 1 - alpha^2, t in [0, T] (T = 1 by default).
    The DDPM linear schedule (1e-4..0.02 over 1000 steps) is the Euler
    discretisation of beta_min = 0.1, beta_max = 20.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.VPSDE(beta_min=0.1, beta_max=20.0)
    >>> t = np.array([0.1, 0.5, 0.9])
    >>> bool(np.allclose(sch.alpha(t) ** 2 + sch.sigma(t) ** 2, 1.0))  # variance preserving
    True
    >>> # alpha(t) = exp(-int_0^t beta / 2) with beta linear from beta_min to beta_max
    >>> bool(np.allclose(sch.alpha(t), np.exp(-0.25 * t**2 * (20.0 - 0.1) - 0.5 * t * 0.1)))
    True
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0):
        if not (beta_min > 0 and beta_max >= beta_min and np.isfinite(beta_max)):
            raise ValueError("beta_min must be > 0 and beta_max >= beta_min (finite)")
        if not (T > 0 and np.isfinite(T)):
            raise ValueError("T must be a positive finite number")
        self.beta_min, self.beta_max, self.T = float(beta_min), float(beta_max), float(T)
        self.t_max = self.T

    def beta(self, t):
        return self._eval(lambda s: self.beta_min + (self.beta_max - self.beta_min) * s / self.T, t)

    def _log_alpha(self, t):
        return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t / self.T)

    def _dlog_alpha(self, t):
        return -0.5 * (self.beta_min + (self.beta_max - self.beta_min) * t / self.T)

    def _sigma2(self, t):
        return -np.expm1(2.0 * self._log_alpha(t))

    def _dsigma2(self, t):
        return -2.0 * self._dlog_alpha(t) * np.exp(2.0 * self._log_alpha(t))

    def t_of_snr(self, snr):
        s = _snr_arg(snr)
        L = np.log1p(1.0 / s)  # beta_min t + (db/2T) t^2 = L
        a = 0.5 * (self.beta_max - self.beta_min) / self.T
        if a == 0:
            out = L / self.beta_min
        else:
            out = 2.0 * L / (self.beta_min + np.sqrt(self.beta_min**2 + 4.0 * a * L))
        if np.any(out > self.T * (1 + 1e-12)):
            raise ValueError(f"snr below the schedule's minimum {float(self.snr(self.T))}")
        return _scalar_or_array(out)

    def __repr__(self) -> str:
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max}, T={self.T})"


class _SigmaIsTime(Schedule):
    """sigma_t = t (variance exploding and flow matching): sigma^2 = t^2, d sigma^2/dt = 2 t."""

    def _sigma2(self, t):
        return t * t

    def _dsigma2(self, t):
        return 2.0 * t


class VarianceExploding(_SigmaIsTime):
    """alpha_t = 1, sigma_t = t: EDM's noise level used directly as time.

    ``t_max`` (default 80, EDM's sigma_max) bounds the sampler start.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.VarianceExploding(sigma_max=80.0)
    >>> float(sch.alpha(3.0)), float(sch.sigma(3.0))  # x_t = x_0 + t z: sigma(t) = t, no shrinkage
    (1.0, 3.0)
    """

    variance_preserving = False

    def __init__(self, sigma_max: float = 80.0):
        if not (sigma_max > 0):
            raise ValueError("sigma_max must be positive")
        self.t_max = float(sigma_max)

    def _log_alpha(self, t):
        return np.zeros_like(t)

    def _dlog_alpha(self, t):
        return np.zeros_like(t)

    def t_of_snr(self, snr):
        s = _snr_arg(snr)
        out = 1.0 / np.sqrt(s)
        return _scalar_or_array(out)

    def __repr__(self) -> str:
        return f"VarianceExploding(sigma_max={self.t_max})"


class FlowMatching(_SigmaIsTime):
    """Rectified-flow interpolant alpha_t = 1 - t, sigma_t = t on [0, 1].

    Not variance preserving. At t = 1, alpha = 0 and the denoiser is undefined,
    so samplers start at ``default_t_start = 1 - 1e-3``.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.FlowMatching()
    >>> t = np.array([0.2, 0.7])
    >>> bool(np.allclose(sch.alpha(t), 1 - t) and np.allclose(sch.sigma(t), t))  # the straight path
    True
    """

    variance_preserving = False
    t_max = 1.0

    def _log_alpha(self, t):
        with np.errstate(divide="ignore"):
            return np.log1p(-t)

    def _dlog_alpha(self, t):
        with np.errstate(divide="ignore"):
            return -1.0 / (1.0 - t)

    def t_of_snr(self, snr):
        s = _snr_arg(snr)
        out = 1.0 / (1.0 + np.sqrt(s))
        return _scalar_or_array(out)

    @property
    def default_t_start(self) -> float:
        return 1.0 - 1e-3


class DiscreteSchedule(Schedule):
    r"""A DDPM schedule given by ``alphas_cumprod`` on K steps, continuous in between.

    Time convention: t is measured in steps, t in [0, K]. The DDPM index k
    (0-based, as in diffusers: ``x_k`` has ``alpha_bar = alphas_cumprod[k]``)
    sits at t = k + 1, and t = 0 is clean data. Between integers,
    log alpha_bar(t) is the monotone cubic (PCHIP) interpolant of the knots,
    so alpha, sigma and their derivatives are continuous and the knots are
    reproduced exactly.

    Use the factories :meth:`linear`, :meth:`cosine` and :meth:`from_diffusers`.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sch = sd.DiscreteSchedule.linear(1000)  # DDPM's betas 1e-4 .. 0.02; t is the step index
    >>> round(float(sch.alpha(500)), 4), round(float(sch.log_snr(500)), 3)
    (0.2803, -2.462)
    >>> round(float(sch.t_of_snr(1.0)), 1)  # where signal and noise are equal
    259.1
    """

    def __init__(self, alphas_cumprod, name: str = "custom"):
        from . import _checks  # (schedules sit at the bottom layer; _checks imports nothing of the package)

        ac = np.asarray(alphas_cumprod)
        if np.iscomplexobj(ac) or ac.dtype.kind not in "fiu":
            raise TypeError(f"alphas_cumprod must be real numbers, got dtype {ac.dtype}")
        ac = _checks.as_float_array(ac, "alphas_cumprod")
        if ac.ndim != 1 or ac.size < 2:
            raise ValueError("alphas_cumprod must be a 1-D array with at least 2 entries")
        if not np.all(np.isfinite(ac)) or np.any(ac <= 0) or np.any(ac >= 1):
            raise ValueError("alphas_cumprod must lie in (0, 1)")
        if np.any(np.diff(ac.astype(np.float64)) >= 0):
            raise ValueError("alphas_cumprod must be strictly decreasing")
        self.alphas_cumprod = ac
        self.name = name
        self.num_steps = int(ac.size)
        self.t_max = float(self.num_steps)
        from scipy.interpolate import PchipInterpolator  # imported here: keeps `import statphys_diffusion` fast

        knots_t = np.arange(self.num_steps + 1, dtype=np.float64)
        knots_la2 = np.concatenate([[0.0], np.log(ac.astype(np.float64))])
        self._interp = PchipInterpolator(knots_t, knots_la2, extrapolate=False)
        self._dinterp = self._interp.derivative()

    # -- factories -------------------------------------------------------------
    @classmethod
    def linear(
        cls, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, *, scale_to_1000: bool = False
    ) -> DiscreteSchedule:
        """Ho et al. (2020) linear betas, computed in float64.

        ``scale_to_1000=True`` multiplies both ends by 1000 / num_steps, the
        convention of improved-diffusion / guided-diffusion (Nichol & Dhariwal
        2021), so that any step count covers the same noise range; diffusers
        does not rescale.
        """
        n = int(num_steps)
        if n < 2:
            raise ValueError(f"num_steps must be >= 2, got {num_steps!r}")
        scale = 1000.0 / n if scale_to_1000 else 1.0
        betas = np.linspace(scale * beta_start, scale * beta_end, n, dtype=np.float64)
        if np.any(betas <= 0) or np.any(betas >= 1):
            raise ValueError("betas must lie in (0, 1): check beta_start, beta_end and num_steps")
        tag = ", scaled to 1000" if scale_to_1000 else ""
        return cls(np.cumprod(1.0 - betas), name=f"linear({beta_start},{beta_end}{tag})")

    @classmethod
    def cosine(cls, num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> DiscreteSchedule:
        """Nichol & Dhariwal (2021) cosine schedule, betas clipped at max_beta, float64."""
        betas = _cosine_betas(int(num_steps), s, max_beta)
        return cls(np.cumprod(1.0 - betas), name=f"cosine(s={s})")

    @classmethod
    def from_diffusers(
        cls,
        beta_schedule: str = "linear",
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
    ) -> DiscreteSchedule:
        """Reproduce ``diffusers.DDPMScheduler(...).alphas_cumprod`` bit for bit.

        diffusers builds betas in float32 with ``torch.linspace`` and takes a
        float32 cumulative product; ``alphas_cumprod`` here is that float32
        array. Supported: ``linear``, ``scaled_linear``, ``squaredcos_cap_v2``.
        """
        from . import _checks
        from ._torch_compat import torch_cumprod_f32, torch_linspace_f32

        _checks.check_choice(beta_schedule, ("linear", "scaled_linear", "squaredcos_cap_v2"), "beta_schedule")
        T = int(num_train_timesteps)
        if beta_schedule == "linear":
            betas = torch_linspace_f32(beta_start, beta_end, T)
        elif beta_schedule == "scaled_linear":
            betas = torch_linspace_f32(beta_start**0.5, beta_end**0.5, T)
            betas = (betas * betas).astype(np.float32)
        else:  # "squaredcos_cap_v2"
            betas = _cosine_betas(T, 0.008, 0.999).astype(np.float32)
        alphas = (np.float32(1.0) - betas).astype(np.float32)
        return cls(torch_cumprod_f32(alphas), name=f"diffusers-{beta_schedule}")

    # -- properties ------------------------------------------------------------
    @property
    def betas(self) -> np.ndarray:
        ac = self.alphas_cumprod.astype(np.float64)
        return 1.0 - ac / np.concatenate([[1.0], ac[:-1]])

    def index_to_time(self, k):
        """DDPM index k (0-based) -> continuous time t = k + 1."""
        k = np.asarray(k)
        if np.any(k < 0) or np.any(k >= self.num_steps):
            raise ValueError(f"index k must lie in [0, {self.num_steps - 1}]")
        return k.astype(np.float64) + 1.0

    def time_to_index(self, t, *, round_to_int: bool = True):
        """Continuous time -> DDPM index (t - 1), rounded to the nearest integer by default."""
        t = _as_t(t)
        if np.any(t < 1.0) or np.any(t > self.t_max):
            raise ValueError(f"t must lie in [1, {self.t_max}] to have a DDPM index")
        k = t - 1.0
        return np.rint(k).astype(np.int64) if round_to_int else k

    def _log_alpha(self, t):
        return 0.5 * self._interp(t)

    def _dlog_alpha(self, t):
        return 0.5 * self._dinterp(t)

    def _sigma2(self, t):
        return -np.expm1(self._interp(t))

    def _dsigma2(self, t):
        return -np.exp(self._interp(t)) * self._dinterp(t)

    @property
    def default_t_start(self) -> float:
        return self.t_max

    def __repr__(self) -> str:
        return f"DiscreteSchedule({self.name}, num_steps={self.num_steps})"


def _cosine_betas(T: int, s: float, max_beta: float) -> np.ndarray:
    """Nichol & Dhariwal cosine betas, as diffusers' ``betas_for_alpha_bar`` (float64)."""

    def abar(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / T) / abar(i / T), max_beta) for i in range(T)], dtype=np.float64)
