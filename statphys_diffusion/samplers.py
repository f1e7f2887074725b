r"""Reverse-time samplers over any score model.

A score model is any object with ``schedule`` and ``score(x, t)`` (and,
optionally, ``denoise(x, t)``; otherwise Tweedie's formula
D = (x + sigma^2 s) / alpha is used). Exact models and wrapped networks alike.

With the forward SDE dx = f(t) x dt + g(t) dW (f = d log alpha/dt,
g^2 = d sigma^2/dt - 2 f sigma^2; see :class:`~statphys_diffusion.schedules.Schedule`):

- reverse SDE (Anderson 1982; Song et al. 2021): dx = [f x - g^2 s_t(x)] dt + g dW-bar, integrated backwards in t,
- probability-flow ODE: dx/dt = f x - 1/2 g^2 s_t(x),
- DDPM ancestral (Ho et al. 2020) and DDIM (Song, Meng & Ermon 2021) steps between any two
  times t > t', from the Gaussian q(x_t' | x_t, x_0 = D_t(x_t)):
  with a = alpha_t / alpha_t', v = sigma_t^2 - a^2 sigma_t'^2,
  mean = a sigma_t'^2 / sigma_t^2 x_t + alpha_t' v / sigma_t^2 x0_hat, variance v sigma_t'^2 / sigma_t^2.

Every sampler starts at any time ``t_start`` from any given points (late
initialisation), returns the trajectory when asked and draws its noise from
the ``rng`` it is given. Its time grid is ``n_steps`` steps from ``t_start`` to
``t_end`` (``spacing`` "uniform" in t or "edm"), the explicit ``times`` given, or
a fixed ``step``: t_start, t_start - step, ... down to t_end, so that runs from
different starts share their step size (``DDPMAncestral(step=5)`` on a
1,000-step schedule is every 5th DDPM step, whatever the start).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _checks
from ._progress import iterate
from ._results import TidyResult, axes, coordinates
from .citations import references
from .conventions import denoiser_from_score
from .protocols import Denoiser, ScoreFunction, require, satisfies
from .schedules import Schedule

__all__ = [
    "SampleResult",
    "EulerMaruyama",
    "Heun",
    "DDPMAncestral",
    "DDIM",
    "initial_noise",
    "time_grid",
    "diffusers_variance",
    "ddpm_time_sequence",
]

SPACINGS = ("uniform", "edm")
EDM_SIGMA_MIN = 0.002
EDM_RHO = 7.0


def ddpm_time_sequence(
    n_steps: int, *, num_train_timesteps: int = 1000, skip: str = "uniform", late_index: int | None = None
) -> np.ndarray:
    """The few-step DDPM/DDIM grids of Raya & Ambrogioni (2023, ``utils.get_time_sequence``), as times.

    DDPM indices (0-based): ``skip="uniform"``: 0, s, 2s, ... with s = K // n_steps; ``"quad"``:
    int(linspace(0, sqrt(0.8 K), n_steps)^2); with ``late_index`` (Gaussian late start at that
    index): int(linspace(0, late_index, n_steps)), which spends every step below the late start.
    Returned in this package's time (index k at t = k + 1) in decreasing order with t = 0 (clean
    data) appended: pass it as ``times=`` to :class:`DDIM` or :class:`DDPMAncestral` on a
    :class:`~statphys_diffusion.schedules.DiscreteSchedule` of K steps.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sd.ddpm_time_sequence(4, num_train_timesteps=1000).tolist()  # indices 0, 250, 500, 750 as t = k + 1
    [751.0, 501.0, 251.0, 1.0, 0.0]
    """
    n = _checks.check_positive_int(n_steps, "n_steps")
    k = _checks.check_positive_int(num_train_timesteps, "num_train_timesteps")
    if n > k:
        raise ValueError(f"n_steps must be at most num_train_timesteps = {k}, got {n}")
    if late_index is None:
        if _checks.check_choice(skip, ("uniform", "quad"), "skip") == "uniform":
            seq = np.arange(0, k, k // n)
        else:
            seq = (np.linspace(0, np.sqrt(k * 0.8), n) ** 2).astype(np.int64)
    else:
        if isinstance(late_index, bool) or int(late_index) != late_index or not 0 < int(late_index) < k:
            raise ValueError(f"late_index must be an integer DDPM index in (0, {k}), got {late_index!r}")
        seq = np.linspace(0, int(late_index), num=n, dtype=np.int64)
    seq = np.unique(seq)  # integer rounding can repeat an index on short grids
    return np.concatenate([seq[::-1].astype(np.float64) + 1.0, [0.0]])


def time_grid(schedule, n_steps: int, t_start: float, t_end: float, spacing: str = "uniform") -> np.ndarray:
    """Decreasing grid of ``n_steps + 1`` times from t_start to t_end.

    ``uniform``: equal steps in t. ``edm``: Karras et al. (2022, eq. 5) steps in
    the EDM noise level sigma/alpha, sigma_i = (s_max^{1/rho} + i/(n-1)
    (s_min^{1/rho} - s_max^{1/rho}))^rho with rho = 7, mapped back to t by
    equal snr; if t_end has sigma = 0, the ramp stops at s_min = 0.002 and a
    last step goes to t_end (as in EDM).

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sd.time_grid(sd.DiscreteSchedule.linear(1000), 4, 999.0, 0.0).tolist()
    [999.0, 749.25, 499.5, 249.75, 0.0]
    """
    n_steps = _checks.check_positive_int(n_steps, "n_steps")
    t_start = _checks.check_time(t_start, schedule, "t_start")
    t_end = _checks.check_time(t_end, schedule, "t_end")
    if not t_start > t_end:
        raise ValueError(f"t_start must be later than t_end (reverse time runs down), got {t_start} and {t_end}")
    if spacing == "uniform":
        return np.linspace(t_start, t_end, n_steps + 1)
    if spacing != "edm":
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    s_max = float(np.exp(-0.5 * schedule.log_snr(t_start)))
    s_end = float(np.exp(-0.5 * schedule.log_snr(t_end)))
    to_zero = s_end == 0.0
    s_min = max(s_end, EDM_SIGMA_MIN) if to_zero else s_end
    n_ramp = n_steps if not to_zero else n_steps - 1
    if n_ramp < 1 or s_min >= s_max:
        return np.linspace(t_start, t_end, n_steps + 1)
    i = np.arange(n_ramp + 1) / n_ramp
    sig = (s_max ** (1 / EDM_RHO) + i * (s_min ** (1 / EDM_RHO) - s_max ** (1 / EDM_RHO))) ** EDM_RHO
    grid = np.asarray(schedule.t_of_snr(1.0 / sig**2), dtype=np.float64)
    grid[0] = t_start
    if to_zero:
        grid = np.concatenate([grid, [t_end]])
    else:
        grid[-1] = t_end
    return grid


@dataclass(frozen=True, repr=False)
class SampleResult(TidyResult):
    """Output of a sampler.

    Attributes
    ----------
    x : (M, d) final points (at ``times[-1]``; denoised to t = 0 if requested)
    times : (n_steps + 1,) the decreasing time grid that was used
    trajectory : (n_steps + 1, M, d) or None, the states at each grid time
    schedule : the model's schedule the times refer to (None when built by hand)
    """

    x: np.ndarray
    times: np.ndarray
    trajectory: np.ndarray | None
    schedule: Schedule | None = None

    def to_rows(self) -> list[dict]:
        """One dict per sample: ``sample``, ``t`` (the last grid time), ``norm`` |x| and, for d <= 16,
        the coordinates ``x_0, ...``."""
        t_end = float(self.times[-1])
        norms = np.linalg.norm(self.x, axis=1)
        return [
            {"sample": i, "t": t_end, "norm": float(norms[i]), **coordinates("x", self.x[i])}
            for i in range(self.x.shape[0])
        ]

    def plot(self, ax=None, *, coordinate: int = 0, chains: int = 50):
        """Coordinate ``coordinate`` of up to ``chains`` trajectories against t (reverse time runs right to
        left), or its histogram over the samples without a trajectory; returns the Axes."""
        ax = axes(ax)
        j = int(coordinate)
        if not 0 <= j < self.x.shape[1]:
            raise ValueError(f"coordinate must lie in [0, {self.x.shape[1]}), got {coordinate!r}")
        if self.trajectory is None:
            ax.hist(self.x[:, j], bins=40, color="C0", alpha=0.8)
            ax.set_xlabel(f"x[{j}] at t = {float(self.times[-1]):.3g}")
            ax.set_ylabel("samples")
            return ax
        m = min(int(chains), self.x.shape[0])
        ax.plot(self.times, self.trajectory[:, :m, j], lw=0.7, alpha=0.7)
        ax.set_xlabel("t")
        ax.set_ylabel(f"x[{j}]")
        return ax


def initial_noise(schedule, n: int, d: int, t_start: float, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Standard start N(0, (alpha^2 + sigma^2) I) at t_start (exact for unit-variance, zero-mean data).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> sch = sd.VarianceExploding(sigma_max=80.0)
    >>> x = sd.initial_noise(sch, 20000, 2, 80.0, np.random.default_rng(0))
    >>> bool(abs(x.std() / np.sqrt(1 + 80.0**2) - 1) < 0.02)  # N(0, (alpha^2 + sigma^2) I)
    True
    """
    n, d = _checks.check_positive_int(n, "n"), _checks.check_positive_int(d, "d")
    t_start = _checks.check_time(t_start, schedule, "t_start")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    a = float(schedule.alpha(t_start))
    s = float(schedule.sigma(t_start))
    return (np.sqrt(a * a + s * s) * rng.standard_normal((n, d))).astype(dtype)


def _initial_state(model, schedule, t_start: float, x_init, n, rng) -> tuple[np.ndarray, np.random.Generator]:
    """Validated starting points (a copy of ``x_init``, or ``n`` draws of :func:`initial_noise`) and the rng."""
    rng = _checks.check_rng(rng)
    if x_init is not None and n is not None:
        raise ValueError("give either x_init or n, not both (n would be ignored: the chains start from x_init)")
    if x_init is None:
        if n is None:
            raise ValueError("give either x_init or n")
        d = getattr(model, "dim", None)
        if d is None:
            raise ValueError("model has no `dim`: pass x_init")
        return initial_noise(schedule, _checks.check_positive_int(n, "n"), d, t_start, rng), rng
    x = _checks.as_float_array(x_init, "x_init")
    d = getattr(model, "dim", None)
    if x.ndim != 2 or (d is not None and x.shape[1] != d):
        raise ValueError(f"x_init must have shape (M, {d if d is not None else 'd'}), got {x.shape}")
    return x.copy(), rng


class _Sampler:
    """Common driver: validation, time grid, trajectory bookkeeping, progress bar."""

    stochastic = True

    def __init__(
        self,
        n_steps: int = 100,
        *,
        times=None,
        spacing: str = "uniform",
        step: float | None = None,
        progress: bool = False,
    ):
        self.n_steps = _checks.check_positive_int(n_steps, "n_steps")
        self.times = None if times is None else _checks.check_times(times, None, order="decreasing", min_size=2)
        self.step = None if step is None else _checks.check_real(step, "step", lo=0.0, lo_open=True)
        if self.step is not None and self.times is not None:
            raise ValueError("give either step or times, not both (the step would be ignored)")
        _checks.check_choice(spacing, SPACINGS, "spacing")
        self.spacing = spacing
        self.progress = bool(progress)

    def __repr__(self) -> str:
        if self.step is not None:
            return f"{type(self).__name__}(step={self.step:g})"
        return f"{type(self).__name__}(n_steps={self.n_steps})"

    def _grid(self, schedule, t_start, t_end) -> np.ndarray:
        if self.times is not None:
            grid = _checks.check_times(self.times, schedule, order="decreasing", min_size=2, scalar=False)
            for name, given, end in (("t_start", t_start, grid[0]), ("t_end", t_end, grid[-1])):
                if given is not None and float(given) != float(end):
                    raise ValueError(
                        f"{name}={given} contradicts the sampler's explicit times, which run from {grid[0]} to "
                        f"{grid[-1]}: give one or the other"
                    )
            return grid
        t0 = schedule.default_t_start if t_start is None else _checks.check_time(t_start, schedule, "t_start")
        t1 = schedule.t_min if t_end is None else _checks.check_time(t_end, schedule, "t_end")
        if not t0 > t1:
            raise ValueError(f"t_start ({t0}) must be greater than t_end ({t1})")
        if self.step is not None:
            # a fixed step from t_start down: the number of steps follows the start (n_steps is unused);
            # the last step ends at t_end and is shorter when step does not divide t_start - t_end
            inner = t0 - self.step * np.arange(1, int(np.ceil((t0 - t1) / self.step - 1e-9)))
            return np.concatenate([[t0], inner[inner > t1], [t1]])
        return time_grid(schedule, self.n_steps, t0, t1, self.spacing)

    def sample(
        self,
        model,
        x_init=None,
        *,
        n: int | None = None,
        t_start: float | None = None,
        t_end: float | None = None,
        rng: np.random.Generator | None = None,
        return_trajectory: bool = False,
        denoise_final: bool = False,
    ) -> SampleResult:
        """Integrate from ``t_start`` down to ``t_end``.

        Parameters
        ----------
        model : object with ``schedule`` and ``score(x, t)``
        x_init : (M, d) array, optional
            Starting points at ``t_start``. If omitted, ``n`` points are drawn by
            :func:`initial_noise` (needs ``model.dim``).
        t_start, t_end : float, optional
            Defaults: ``schedule.default_t_start`` and ``schedule.t_min``. With explicit
            ``times`` they may be omitted, or must equal the grid's ends.
        rng : numpy.random.Generator
        return_trajectory : bool
        denoise_final : bool
            Replace the last state by D_{t_end}(x) (Tweedie), the usual last step
            when t_end > 0.
        """
        self._require(model)
        schedule = model.schedule
        grid = self._grid(schedule, t_start, t_end)
        x, rng = _initial_state(model, schedule, float(grid[0]), x_init, n, rng)
        traj = np.empty((grid.size,) + x.shape, dtype=x.dtype) if return_trajectory else None
        if traj is not None:
            traj[0] = x
        steps = iterate(range(grid.size - 1), self.progress, type(self).__name__)
        for i in steps:
            x = self._step(model, schedule, x, float(grid[i]), float(grid[i + 1]), rng)
            if traj is not None:
                traj[i + 1] = x
        if denoise_final:
            x = _denoise(model, x, float(grid[-1]))
        return SampleResult(x=x, times=grid, trajectory=traj, schedule=schedule)

    def _step(self, model, schedule, x, t, t_next, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _require(self, model) -> None:
        """The protocol this sampler needs: a score (SDE/ODE integrators; DDPM and DDIM take a denoiser too)."""
        require(model, ScoreFunction, purpose=f"{type(self).__name__} integrates the score")


def _denoise(model, x, t, y=None):
    """The denoiser a sampling step uses: ``model.denoise`` (or Tweedie from the score), clipped to
    [-c, c] where the model declares ``clip_denoised = c`` (a diffusers scheduler's ``clip_sample``).

    Only samplers clip; analysis tools read the model's unclipped prediction."""
    kw = {} if y is None else {"y": y}
    if satisfies(model, Denoiser):
        d = model.denoise(x, t, **kw)
    else:
        d = denoiser_from_score(x, model.score(x, t, **kw), t, model.schedule)
    c = getattr(model, "clip_denoised", None)
    if c is not None:
        d = np.clip(d, -c, c)
    return d


def _sde_coeffs(schedule, t):
    return float(schedule.drift_coefficient(t)), float(schedule.diffusion2(t))


@references("song2021sde")
class EulerMaruyama(_Sampler):
    """Euler-Maruyama for the reverse SDE dx = [f x - g^2 s] dt + g dW-bar (dt < 0).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[0.0]], 4.0)
    >>> x = sd.EulerMaruyama(400).sample(gm, n=4000, rng=np.random.default_rng(0)).x  # reverse SDE
    >>> bool(abs(x.var() - 4.0) < 0.3)
    True
    """

    def _step(self, model, schedule, x, t, t_next, rng):
        f, g2 = _sde_coeffs(schedule, t)
        dt = t_next - t
        drift = f * x - g2 * model.score(x, t)
        noise = np.sqrt(g2 * -dt) * rng.standard_normal(x.shape)
        return (x + drift * dt + noise).astype(x.dtype, copy=False)


@references("karras2022")
class Heun(_Sampler):
    """Heun's second-order method for the probability-flow ODE dx/dt = f x - g^2 s / 2.

    The correction is skipped on a step that ends at the schedule's t_min
    (Karras et al. 2022, Algorithm 1), where the score of a degenerate model is
    undefined. Deterministic: ``rng`` is unused.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[0.0]], 4.0)
    >>> x = sd.Heun(50).sample(gm, n=4000, rng=np.random.default_rng(0)).x  # probability-flow ODE
    >>> bool(abs(x.var() - 4.0) < 0.3)
    True
    """

    stochastic = False

    @staticmethod
    def _velocity(model, schedule, x, t):
        f, g2 = _sde_coeffs(schedule, t)
        return f * x - 0.5 * g2 * model.score(x, t)

    def _step(self, model, schedule, x, t, t_next, rng):
        dt = t_next - t
        v0 = self._velocity(model, schedule, x, t)
        x_e = x + v0 * dt
        if t_next <= schedule.t_min:
            return x_e.astype(x.dtype, copy=False)
        v1 = self._velocity(model, schedule, x_e, t_next)
        return (x + 0.5 * (v0 + v1) * dt).astype(x.dtype, copy=False)


def _bridge(schedule, t, t_next):
    """(alpha_t', sigma_t'^2, alpha_t, sigma_t^2, a_ratio, v = sigma_t^2 - a_ratio^2 sigma_t'^2)."""
    a1, s1 = float(schedule.alpha(t_next)), float(schedule.sigma2(t_next))
    a0, s0 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    ar = a0 / a1
    v = max(s0 - ar * ar * s1, 0.0)
    return a1, s1, a0, s0, ar, v


def _ddpm_kernel(schedule, t, t_next):
    """(c_x, c_0, var): q(x_t' | x_t, x0) = N(c_x x_t + c_0 x0, var I) for t' < t (Ho et al. 2020, eq. 7)."""
    a1, s1, a0, s0, ar, v = _bridge(schedule, t, t_next)
    return ar * s1 / s0, a1 * v / s0, v * s1 / s0


_DIFFUSERS_VARIANCES = {"fixed_small": "fixed_small", "fixed_small_log": "fixed_small", "fixed_large": "fixed_large"}
VARIANCES = ("fixed_small", "fixed_large")


def diffusers_variance(config) -> str:
    """The :class:`DDPMAncestral` variance for a diffusers scheduler configuration's ``variance_type``.

    ``fixed_small`` and ``fixed_small_log`` (the same numbers) -> ``fixed_small``; ``fixed_large`` ->
    ``fixed_large``; anything else is refused with a ValueError.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> sd.diffusers_variance({"variance_type": "fixed_small_log"})  # the same numbers as fixed_small
    'fixed_small'
    """
    vt = config.get("variance_type", "fixed_small") or "fixed_small"
    if vt not in _DIFFUSERS_VARIANCES:
        raise ValueError(
            f"variance_type={vt!r} is not supported by the package's DDPM sampler (supported: "
            f"{sorted(_DIFFUSERS_VARIANCES)}; learned variances need the network's second output, and diffusers' "
            "fixed_large_log takes the square root of a log)"
        )
    return _DIFFUSERS_VARIANCES[vt]


@references("ho2020")
class DDPMAncestral(_Sampler):
    """Ancestral sampling from q(x_t' | x_t, x0 = D_t(x_t)) between grid times.

    On a :class:`~statphys_diffusion.schedules.DiscreteSchedule` with the
    integer grid K, K-1, ..., 0 it is exactly Ho et al.'s sampler.
    ``variance="fixed_small"`` uses the posterior variance beta-tilde
    (v sigma_t'^2 / sigma_t^2, the default); ``"fixed_large"`` uses
    beta = 1 - (alpha_t / alpha_t')^2 (Ho et al.'s other choice, diffusers'
    ``fixed_large``), with no noise on the last step to t' = 0 (as diffusers).
    :meth:`from_diffusers` builds the sampler that reproduces a diffusers
    ``DDPMScheduler`` loop.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[0.0]], 4.0, schedule=sd.DiscreteSchedule.linear(1000))
    >>> x = sd.DDPMAncestral(200).sample(gm, n=4000, rng=np.random.default_rng(0)).x
    >>> bool(abs(x.var() - 4.0) < 0.3)  # N(0, 4) back, within Monte Carlo error (s.e. about 0.09)
    True
    """

    def __init__(
        self,
        n_steps: int = 100,
        *,
        variance: str = "fixed_small",
        times=None,
        spacing: str = "uniform",
        step: float | None = None,
        progress: bool = False,
    ):
        super().__init__(n_steps, times=times, spacing=spacing, step=step, progress=progress)
        _checks.check_choice(variance, VARIANCES, "variance")
        self.variance = variance

    @classmethod
    def from_diffusers(cls, scheduler, num_inference_steps: int | None = None, *, progress: bool = False):
        """The sampler of a diffusers ``DDPMScheduler``: its timesteps (index k at t = k + 1, then t = 0)
        and its ``variance_type``. ``num_inference_steps`` calls ``set_timesteps`` on a copy of the
        scheduler (the caller's is left as it is); by default the scheduler's current timesteps."""
        import copy

        sch = copy.deepcopy(scheduler)
        if num_inference_steps is not None:
            sch.set_timesteps(_checks.check_positive_int(num_inference_steps, "num_inference_steps"))
        ts = np.asarray(sch.timesteps, dtype=np.float64)
        grid = np.concatenate([ts + 1.0, [0.0]])
        return cls(ts.size, variance=diffusers_variance(sch.config), times=grid, progress=progress)

    def _require(self, model) -> None:
        if not satisfies(model, Denoiser):
            require(model, ScoreFunction, purpose="DDPM steps need denoise(x, t), or a score for Tweedie's formula")

    def _step(self, model, schedule, x, t, t_next, rng):
        cx, c0, var = _ddpm_kernel(schedule, t, t_next)
        if self.variance == "fixed_large":
            a1, s1, a0 = float(schedule.alpha(t_next)), float(schedule.sigma2(t_next)), float(schedule.alpha(t))
            var = 1.0 - (a0 / a1) ** 2 if s1 > 0 else 0.0
        mean = cx * x + c0 * _denoise(model, x, t)
        return (mean + np.sqrt(var) * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)


@references("song2021ddim")
class DDIM(_Sampler):
    """DDIM step x' = alpha' x0_hat + sqrt(sigma'^2 - c^2) eps_hat + c z (Song et al. 2021, eq. 12).

    c^2 = eta^2 v sigma'^2 / sigma^2 (``eta = 0``: deterministic, ``eta = 1``: DDPM ancestral).

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1, labels=[0, 1])
    >>> x = sd.DDIM(50).sample(gm, n=1000, rng=np.random.default_rng(0)).x  # deterministic (eta = 0)
    >>> x.shape, round(float(np.mean(np.abs(x))), 1)  # the samples sit at the two modes
    ((1000, 1), 1.9)
    >>> sd.DDIM(step=10)  # a fixed step from any start (late initialisation)
    DDIM(step=10)
    """

    def __init__(
        self,
        n_steps: int = 50,
        *,
        eta: float = 0.0,
        times=None,
        spacing: str = "uniform",
        step: float | None = None,
        progress: bool = False,
    ):
        super().__init__(n_steps, times=times, spacing=spacing, step=step, progress=progress)
        self.eta = _checks.check_real(eta, "eta", lo=0.0, hi=1.0)
        self.stochastic = self.eta > 0

    def _require(self, model) -> None:
        if not satisfies(model, Denoiser):
            require(model, ScoreFunction, purpose="DDIM steps need denoise(x, t), or a score for Tweedie's formula")

    def _step(self, model, schedule, x, t, t_next, rng):
        a1, s1, a0, s0, ar, v = _bridge(schedule, t, t_next)
        x0 = _denoise(model, x, t)
        eps = (x - a0 * x0) / np.sqrt(s0)
        c2 = self.eta**2 * v * s1 / s0
        out = a1 * x0 + np.sqrt(max(s1 - c2, 0.0)) * eps
        if c2 > 0:
            out = out + np.sqrt(c2) * rng.standard_normal(x.shape)
        return out.astype(x.dtype, copy=False)
