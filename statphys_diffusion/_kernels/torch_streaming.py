r"""The streaming isotropic-mixture kernel of :mod:`.streaming` in torch (CPU or GPU).

The same computation as :func:`.streaming.streaming_iso` (see its module docstring for the
formulas): per block of rows and chunk of components, one matrix product
``G = x @ mu_c.T`` in the input's dtype, the logits

    L_ik = bias_k + (a / c_k) G_ik - |x_i|^2 (1 / c_k - 1 / c_min) / 2

in float64, an online softmax with a running maximum per row (weights below e^cut of it set to 0,
as in the numba kernel), and the accumulation
``acc += (W / c) @ mu_c`` in the input's dtype (``addmm_``). Memory per call is one
(rows x chunk) float64 logit buffer and one input-dtype product, whatever K and M are.
Accumulators (run_sum, acc_b = sum w / c, acc_bv = sum w v / c, class sums) are float64, as
in the numba kernel; score = (a acc_mu - acc_b x) / run_sum and
E[x0 | x] = (sigma^2 acc_mu + a acc_bv x) / run_sum.
"""

from __future__ import annotations

import math

import numpy as np

from .streaming import CUT, chunk_size  # the same weight cut and chunk rule as the numba kernel


def _torch():
    import torch

    return torch


def streaming_iso_torch(
    x,
    mu,
    musq,
    log_w,
    var,
    a: float,
    s2: float,
    labels,
    n_cls: int,
    want_score: bool,
    want_denoise: bool,
    budget_bytes: int = 64 << 20,
    row_block: int = 1024,
    chunk: int | None = None,
):
    """Evaluate an isotropic mixture at rows x (M, d), all arguments torch tensors on one device.

    ``x`` and ``mu`` (K, d) share a floating dtype; ``musq``, ``log_w``, ``var`` (K,) are float64;
    ``labels`` (K,) int64 codes (ignored when ``n_cls == 0``). Returns torch tensors
    (lse (M,) float64, score or None, denoise or None, class posterior (M, n_cls) float64 or None).
    """
    torch = _torch()
    m_pts, d = x.shape
    k_all = mu.shape[0]
    dev, dt = x.device, x.dtype
    c = a * a * var + s2
    invc = 1.0 / c
    invc_min = invc.min()
    bias_all = log_w - 0.5 * d * torch.log(2.0 * math.pi * c) - 0.5 * a * a * musq * invc
    a_invc_all = a * invc
    corr_all = invc - invc_min
    vinvc_all = var * invc
    f64 = torch.float64
    lse = torch.empty(m_pts, dtype=f64, device=dev)
    score = torch.empty((m_pts, d), dtype=dt, device=dev) if want_score else None
    den = torch.empty((m_pts, d), dtype=dt, device=dev) if want_denoise else None
    cls_out = torch.empty((m_pts, n_cls), dtype=f64, device=dev) if n_cls else None
    rb = max(1, min(row_block, m_pts))
    # the float64 logits dominate the chunk's memory
    nc = chunk if chunk is not None else chunk_size(rb, 8, budget_bytes)
    nc = max(1, min(nc, k_all))
    neg_inf = torch.tensor(-math.inf, dtype=f64, device=dev)
    cut = CUT[np.dtype(np.float64)] if dt == torch.float64 else CUT[np.dtype(np.float32)]
    for r0 in range(0, m_pts, rb):
        r1 = min(m_pts, r0 + rb)
        xb = x[r0:r1]
        rows = r1 - r0
        xsq = (xb.to(f64) ** 2).sum(dim=1)
        run_max = torch.full((rows,), -math.inf, dtype=f64, device=dev)
        run_sum = torch.zeros(rows, dtype=f64, device=dev)
        acc_b = torch.zeros(rows, dtype=f64, device=dev)
        acc_bv = torch.zeros(rows, dtype=f64, device=dev)
        acc_cls = torch.zeros((rows, n_cls), dtype=f64, device=dev)
        acc = torch.zeros((rows, d), dtype=dt, device=dev)
        for k0 in range(0, k_all, nc):
            k1 = min(k_all, k0 + nc)
            mu_c = mu[k0:k1]
            logit = (xb @ mu_c.T).to(f64)
            logit.mul_(a_invc_all[k0:k1])
            logit.add_(bias_all[k0:k1])
            logit.sub_(0.5 * xsq[:, None] * corr_all[k0:k1])
            new = torch.maximum(run_max, logit.max(dim=1).values)
            alive = new > neg_inf
            safe_new = torch.where(alive, new, torch.zeros_like(new))
            scale = torch.where(run_max > neg_inf, torch.exp(run_max - safe_new), torch.zeros_like(new))
            scale = torch.where(alive, scale, torch.ones_like(scale))
            logit.sub_(safe_new[:, None])
            logit.masked_fill_(logit < cut, -math.inf)
            w = torch.exp(logit)
            w.masked_fill_(~alive[:, None], 0.0)
            run_sum = run_sum * scale + w.sum(dim=1)
            acc_b = acc_b * scale + w @ invc[k0:k1]
            acc_bv = acc_bv * scale + w @ vinvc_all[k0:k1]
            if n_cls:
                acc_cls.mul_(scale[:, None])
                acc_cls.index_add_(1, labels[k0:k1], w)
            acc.mul_(scale[:, None].to(dt))
            acc.addmm_((w * invc[k0:k1]).to(dt), mu_c)
            run_max = torch.where(alive, new, run_max)
        lse[r0:r1] = run_max + torch.log(run_sum) - 0.5 * xsq * invc_min
        inv_sum = (1.0 / run_sum)[:, None]
        if score is not None:  # (allocated exactly when want_score; likewise den and cls_out)
            score[r0:r1] = ((a * acc.to(f64) - acc_b[:, None] * xb.to(f64)) * inv_sum).to(dt)
        if den is not None:
            den[r0:r1] = ((s2 * acc.to(f64) + (a * acc_bv)[:, None] * xb.to(f64)) * inv_sum).to(dt)
        if cls_out is not None:
            cls_out[r0:r1] = acc_cls * inv_sum
    return lse, score, den, cls_out


def as_numpy(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()
