r"""The log-density of any score model by its probability-flow ODE (Song et al. 2021, appendix D.2).

Along the probability flow dx/ds = v(x, s) = f(s) x - g(s)^2 s_s(x) / 2 the log-density changes as
d log p_s(x_s) / ds = -div v(x_s, s), so integrating the flow from x at time t up to T,

    log p_t(x) = log p_T(x_T) + int_t^T div v(x_s, s) ds,
    div v = f d - g^2 tr H_s(x) / 2,   H_s = grad^2 log p_s (the score's Jacobian),

with p_T the schedule's terminal Gaussian N(0, (alpha_T^2 + sigma_T^2) I) (the data's part
alpha_T^2 Cov of it is neglected: alpha_T^2 = 4e-5 at the DDPM linear schedule's T = 1000). The trace
is Hutchinson's estimate eps^T H eps with Rademacher probes (exact in expectation; the same probes
along the whole path, as in FFJORD), from Hessian-vector products ``model.hvp(x, t, v)`` (the exact
models). For a network (a model with ``vjp``, the denoiser's vector-Jacobian product) the probe's quadratic
form is taken from one vjp, eps^T H eps = eps^T (alpha J^T eps - eps) / sigma^2 with J = dD_t/dx: a
quadratic form sees only the symmetric part, so this equals the symmetrised Hessian's at half its cost
(``hvp`` is one jvp and one vjp). The
flow is integrated by Heun's method on a grid uniform in log-SNR, the divergence by the trapezoid rule.

With ``y`` (a class, for a labelled or conditional model) it is log p_t(x | y): the conditional score
and Hessian along the conditional flow.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .citations import references
from .mixture import GaussianMixture
from .protocols import CurvatureModel, require

__all__ = ["flow_log_likelihood"]


def _coeffs(schedule, t: float) -> tuple[float, float]:
    return float(schedule.drift_coefficient(t)), float(schedule.diffusion2(t))


@references("song2021sde")
def flow_log_likelihood(
    model: CurvatureModel,
    x,
    t: float,
    *,
    y=None,
    t_end: float | None = None,
    n_steps: int = 100,
    n_probes: int = 4,
    products: str = "auto",
    rng=None,
) -> np.ndarray:
    """log p_t(x) (or log p_t(x | y)) of ``model`` at each row of ``x`` by its probability-flow ODE.

    Parameters
    ----------
    model : a score model with ``hvp(x, t, v)`` (exact models; wrapped networks)
    x : (M, d) points at time ``t``
    t : float, the time of x
    y : optional class (a label of the model); the conditional flow and density
    t_end : float, optional
        Where the flow stops and the terminal Gaussian is read (default: the schedule's default start).
    n_steps : Heun steps, uniform in log-SNR between t and t_end
    n_probes : Rademacher probes per point for the trace (their mean; the estimate's variance falls as
        1 / n_probes)
    products : {"auto", "vjp", "hvp"}
        How each probe's quadratic form eps^T H eps is taken: "vjp" from one vector-Jacobian product of the
        denoiser (needs ``model.vjp``; half the cost of "hvp"), "hvp" from the model's Hessian-vector
        product; "auto" (default) uses "vjp" where the model has it. The two agree to rounding with the
        same probes (module docstring).
    rng : None, int or numpy Generator (the probes)

    Returns
    -------
    (M,) float64 log-densities.

    Examples
    --------
    >>> import numpy as np, statphys_diffusion as sd
    >>> gm = sd.GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.5]], 0.2)
    >>> x = np.array([[0.3, -0.2], [-0.5, 0.4]])
    >>> est = sd.flow_log_likelihood(gm, x, 0.3, n_steps=100, n_probes=256, rng=0)
    >>> bool(np.allclose(est, gm.log_prob(x, 0.3), atol=0.05))  # Hutchinson's noise, 256 probes
    True
    """
    require(model, CurvatureModel, purpose="the flow's divergence needs Hessian-vector products")
    sch = model.schedule
    x0 = _checks.as_points(x, getattr(model, "dim", None) or np.shape(x)[-1], "x").astype(np.float64)
    _checks.check_magnitude(x0, "x")
    t = _checks.check_time(t, sch, allow_zero=False)
    t1 = float(sch.default_t_start) if t_end is None else _checks.check_time(t_end, sch, "t_end")
    if not t1 > t:
        raise ValueError(f"t_end ({t1}) must be later than t ({t})")
    n_steps = _checks.check_positive_int(n_steps, "n_steps")
    n_probes = _checks.check_positive_int(n_probes, "n_probes")
    _checks.check_choice(products, ("auto", "vjp", "hvp"), "products")
    rng = _checks.check_rng(rng)
    kw = {} if y is None else {"y": y}
    if y is not None and isinstance(model, GaussianMixture):  # an exact mixture: its class's own mixture
        model, kw = model.conditional(y), {}
    # a grid uniform in log-SNR (the flow's scale), from t up to t_end
    lsnr = np.linspace(float(sch.log_snr(t)), float(sch.log_snr(t1)), n_steps + 1)
    grid = np.array([float(sch.t_of_snr(np.exp(v))) for v in lsnr])
    grid[0], grid[-1] = t, t1
    m, d = x0.shape
    probes = rng.choice([-1.0, 1.0], size=(n_probes, m, d))
    vjp = None if products == "hvp" else getattr(model, "vjp", None)
    if products == "vjp" and vjp is None:
        raise ValueError(f"products='vjp' needs a model with vjp(x, t, v); {type(model).__name__} has none")

    def velocity_and_divergence(z, s):
        f, g2 = _coeffs(sch, s)
        v = f * z - 0.5 * g2 * np.asarray(model.score(z, s, **kw), dtype=np.float64)
        # every probe of every point in one batch of products
        zs, ps = np.tile(z, (n_probes, 1)), probes.reshape(-1, d)
        if vjp is None:
            hv = np.asarray(model.hvp(zs, s, ps, **kw), dtype=np.float64)
        else:  # eps^T H eps from J^T eps alone (module docstring)
            a, s2 = float(sch.alpha(s)), float(sch.sigma2(s))
            hv = (a * np.asarray(vjp(zs, s, ps, **kw), dtype=np.float64) - ps) / s2
        trace = np.einsum("pmd,pmd->m", probes, hv.reshape(n_probes, m, d)) / n_probes
        return v, f * d - 0.5 * g2 * trace

    z = x0
    integral = np.zeros(m)
    v0, div0 = velocity_and_divergence(z, grid[0])
    for i in range(n_steps):
        ds = grid[i + 1] - grid[i]
        z_e = z + v0 * ds
        v1, div1 = velocity_and_divergence(z_e, grid[i + 1])
        z = z + 0.5 * (v0 + v1) * ds
        v0, div_new = velocity_and_divergence(z, grid[i + 1])
        integral += 0.5 * (div0 + div_new) * ds
        div0 = div_new
    var_t = float(sch.alpha(t1)) ** 2 + float(sch.sigma2(t1))
    log_prior = -0.5 * np.einsum("md,md->m", z, z) / var_t - 0.5 * d * np.log(2 * np.pi * var_t)
    return log_prior + integral
