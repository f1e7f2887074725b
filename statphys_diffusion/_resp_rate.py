r"""Time derivatives of mixture responsibilities along a moving point (internal).

For a Gaussian mixture p_t = sum_k pi_k N(alpha mu_k, S_k), S_k = alpha^2 Sigma_k
+ sigma^2 I, and a point moving as x(t) with velocity xdot, the log-weights

    l_k = log pi_k - 1/2 log det(2 pi S_k) - 1/2 u_k^T S_k^{-1} u_k,   u_k = x - alpha mu_k,

change at the rate (Jacobi's formula and d S^{-1} = -S^{-1} dS S^{-1}), with
g_k = S_k^{-1} u_k, udot_k = xdot - alpha' mu_k, S_k' = (alpha^2)' Sigma_k + (sigma^2)' I:

    l_k' = -1/2 [(alpha^2)' tr(S_k^{-1} Sigma_k) + (sigma^2)' tr(S_k^{-1})]
           - g_k . udot_k + 1/2 [(alpha^2)' g_k^T Sigma_k g_k + (sigma^2)' |g_k|^2].

The responsibilities r = softmax(l) then move as r_k' = r_k (l_k' - sum_j r_j l_j'),
and the class posterior p_c = sum_{k in c} r_k as p_c' = sum_{k in c} r_k'. The
entropy h = -sum_c p_c log p_c moves as h' = -sum_c p_c' log p_c (sum_c p_c' = 0).

This is the exact pathwise derivative used by the entropy-rate estimators: with
x(t) = alpha_t x_0 + sigma_t eps it differentiates one Monte Carlo draw, with
x(t) = alpha_t mu_k + sqrt(alpha_t^2 v_k + sigma_t^2) z one quadrature node.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax


def coefficients(schedule, t: float) -> tuple[float, float, float, float, float, float]:
    """(alpha, alpha', sigma, sigma', (alpha^2)', (sigma^2)') at time t."""
    a, ad = float(schedule.alpha(t)), float(schedule.dalpha(t))
    s, sd = float(schedule.sigma(t)), float(schedule.dsigma(t))
    return a, ad, s, sd, 2 * a * ad, 2 * s * sd


def generic_logits_and_rates(model, x: np.ndarray, xdot: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(l, l') of shape (M, K) for any covariance kind, one component at a time."""
    comp = model.components
    cov = comp.covariance
    a, ad, s, sd, da2, ds2 = coefficients(model.schedule, t)
    a2, s2 = a * a, s * s
    mu = comp.means
    logdet = cov.logdet(a2, s2)
    t1, t2 = cov.dlogdet(a2, s2)
    m, k = x.shape[0], mu.shape[0]
    ell = np.empty((m, k))
    rate = np.empty((m, k))
    for j in range(k):
        u = x - a * mu[j]
        g = cov.apply_prec(j, u, a2, s2)
        bias = comp.log_weights[j] - 0.5 * (model.dim * np.log(2 * np.pi) + logdet[j])
        ell[:, j] = bias - 0.5 * np.einsum("ij,ij->i", u, g)
        udot = xdot - ad * mu[j]
        rate[:, j] = (
            -0.5 * (da2 * t1[j] + ds2 * t2[j])
            - np.einsum("ij,ij->i", g, udot)
            + 0.5 * (da2 * cov.quad_cov(j, g) + ds2 * np.einsum("ij,ij->i", g, g))
        )
    return ell, rate


def isotropic_logits_and_rates(
    model, xm: np.ndarray, xdm: np.ndarray, xx: np.ndarray, xxd: np.ndarray, t: float
) -> tuple[np.ndarray, np.ndarray]:
    """(l, l') for isotropic components from the products x.mu_k, xdot.mu_k, |x|^2, x.xdot.

    With c_k = alpha^2 v_k + sigma^2 the general formula reduces to
    l_k' = -d c_k'/(2 c_k) - u_k.udot_k / c_k + |u_k|^2 c_k' / (2 c_k^2), where
    |u_k|^2 = |x|^2 - 2 alpha x.mu_k + alpha^2 |mu_k|^2 and
    u_k.udot_k = x.xdot - alpha' x.mu_k - alpha xdot.mu_k + alpha alpha' |mu_k|^2.
    The constant -d/2 log(2 pi) is dropped (it cancels in the softmax).
    """
    a, ad, s, sd, da2, ds2 = coefficients(model.schedule, t)
    comp = model.components
    v = comp.covariance.var
    c = a * a * v + s * s
    cd = da2 * v + ds2
    d = model.dim
    musq = comp.mean_sq_norms
    usq = xx[:, None] - 2 * a * xm + (a * a) * musq[None, :]
    uud = xxd[:, None] - ad * xm - a * xdm + (a * ad) * musq[None, :]
    with np.errstate(divide="ignore"):
        ell = (comp.log_weights - 0.5 * d * np.log(c))[None, :] - usq / (2 * c)
    rate = (-0.5 * d * cd / c)[None, :] - uud / c + usq * (cd / (2 * c * c))
    return ell, rate


def class_posterior_and_rate(
    ell: np.ndarray, rate: np.ndarray, onehot: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From (l, l') and the (K, C) class indicator: (p, p', h, h') per row."""
    r = softmax(ell, axis=1)
    mean_rate = np.einsum("ij,ij->i", r, rate)
    rdot = r * (rate - mean_rate[:, None])
    p = r @ onehot
    pdot = rdot @ onehot
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = -(p * logp).sum(axis=1)
    hdot = -(pdot * logp).sum(axis=1)
    return p, pdot, h, hdot
