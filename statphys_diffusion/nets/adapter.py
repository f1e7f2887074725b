r"""Any torch denoising network as a score model for the analysis tools.

A network trained on x_t = alpha_t x_0 + sigma_t eps predicts eps, x_0, v or an
EDM-preconditioned output (``prediction=``; the conversions are in
:mod:`statphys_diffusion.nets.parametrization`). Its noise prediction eps_theta
gives (Tweedie; Vincent 2011)

    s_t(x) = -eps_theta(x, tau(t)) / sigma_t,    D_t(x) = (x - sigma_t eps_theta) / alpha_t,

where tau(t) is what the network takes as its time input: the DDPM index
t - 1 on a :class:`~statphys_diffusion.schedules.DiscreteSchedule` (diffusers'
``timesteps``), the schedule time itself otherwise, or any callable. Rows of
x (M, d) are reshaped to ``image_shape`` for convolutional networks.

The Jacobian of the denoiser is reached only through products:
J v by forward mode (``torch.func.jvp``, with attention on the math kernel,
which has forward-mode rules) or, where an operator has no usable forward-mode
rule (diffusers' attention blocks hand GroupNorm a non-contiguous tangent), by
reverse-over-reverse differentiation: J v = d/du <J^T u, v>, two backward passes
through the graph of J^T u; and J^T v by reverse mode. The top-k
spectrum of its symmetric part (J + J^T)/2 by Lanczos (scipy ``eigsh``) on
those products, never a dense d x d matrix unless :meth:`dense_jacobian` is
called. For an exact score the Jacobian is symmetric (a posterior covariance
times alpha / sigma^2); for a network the symmetric part is the natural
analogue (Achilli et al. 2024 use the spectrum of the learned score's Jacobian).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _checks
from ..samplers import diffusers_variance
from ..schedules import DiscreteSchedule, Schedule
from . import parametrization as _param

__all__ = ["TorchScoreModel", "from_diffusers", "diffusers_schedule"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("statphys_diffusion.nets needs torch: pip install torch (CPU build: torch==2.13.0)") from exc
    return torch


_JVP_MODES = ("auto", "forward", "reverse")


def _jvp_reverse(f, x, v):
    """J v by reverse-over-reverse: the gradient in u of <J^T u, v> (needs double backward)."""
    torch = _torch()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = f(x)
        u = torch.zeros_like(y, requires_grad=True)
        (g,) = torch.autograd.grad(y, x, u, create_graph=True)
        (jv,) = torch.autograd.grad(g, u, v)
    return jv


def _math_attention():
    """Context selecting the math scaled-dot-product-attention kernel (differentiable in every mode)."""
    import contextlib

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - older torch
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


class TorchScoreModel:
    """Score-model protocol (``schedule``, ``dim``, ``score``, ``denoise``, ...) over a torch network.

    Parameters
    ----------
    net : torch.nn.Module
        Called as ``net(x, tau)`` or, with a class, ``net(x, tau, y)``; returns a tensor of the
        shape of x: eps, x_0, v or the EDM output, as ``prediction`` says.
    schedule : Schedule
        The schedule the network was trained with.
    prediction : {"eps", "x0", "v", "edm"}
        What the network predicts (diffusers' ``epsilon``, ``sample``, ``v_prediction`` also
        accepted). ``edm`` feeds the network c_in x_t / alpha and reads c_skip, c_out with
        ``sigma_data`` (Karras et al. 2022).
    sigma_data : float
        EDM's data standard deviation (0.5 for images in [-1, 1]).
    image_shape : tuple, optional
        (C, H, W) the network expects; rows of length C*H*W (the package's image layout: (C, H, W)
        order, flattened) are reshaped, and (M, C, H, W) arrays are accepted as they are.
    data_range : (float, float), optional
        The range of the data the network was trained on (default (-1, 1) for image networks, the
        DDPM convention; None for others). Data handed to the analysis tools as images (e.g.
        :func:`~statphys_diffusion.regime_map`'s ``train``) must lie in it.
    time_input : {"auto", "index", "time"} or callable
        ``auto``: DDPM index t - 1 on a DiscreteSchedule, t otherwise.
    classes : array_like, optional
        Class labels the network accepts as ``y`` (enables ``score(x, t, y=...)``).
    class_weights : array_like, optional
        Prior class probabilities (default uniform), used by guidance and posteriors.
    classifier : callable, optional
        ``classifier(x (M, d) ndarray, t) -> (M, C) log-probabilities``; enables
        :meth:`class_posterior`.
    batch_size : int
        Rows per forward pass.
    product_batch_size : int, optional
        Rows per Jacobian-vector product (``jvp``, ``vjp``, ``hvp``). Default: ``batch_size`` on an
        accelerator, at most 256 on the CPU, where autograd through a large batch is slower per row
        (the 16 x 16 ``small`` UNet on 2 cores: 1,024 rows take 1.8x longer as one vjp batch than as four of
        256, 3.1x for jvp; ``benchmarks/bench_flow_likelihood.py``).
    device : str or torch.device, optional
        Move the network there; by default it stays where it is. Inputs always go to the
        network's current device and results come back as float64 numpy arrays.
    clip_denoised : float, optional
        The range [-c, c] that the package's samplers clip the denoiser to in their steps, as
        diffusers' ``clip_sample`` does (so they reproduce a diffusers pipeline). The rule: samplers
        honour the clip; analysis tools (:meth:`denoise`, :meth:`score`, :meth:`eps`, the Jacobian
        products, the regime map, dimension and entropy estimators) measure the network's own
        unclipped prediction, unless the caller asks for the clipped one with
        ``denoise(x, t, clip=True)``. (A clip makes an untrained network look like a denoiser: it
        pulls any x_0 prediction into the data's range.)
    jvp_mode : {"auto", "forward", "reverse"}
        How J v is computed: forward mode, reverse-over-reverse, or forward mode with a fallback
        to reverse-over-reverse the first time forward mode fails on this network.
    """

    def __init__(
        self,
        net,
        schedule: Schedule,
        *,
        image_shape: tuple | None = None,
        data_range: tuple | None = None,
        time_input: str | Callable = "auto",
        classes=None,
        class_weights=None,
        classifier: Callable | None = None,
        batch_size: int = 1024,
        product_batch_size: int | None = None,
        prediction: str = "eps",
        sigma_data: float = 0.5,
        device=None,
        clip_denoised: float | None = None,
        jvp_mode: str = "auto",
    ):
        torch = _torch()
        if not isinstance(net, torch.nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        self.prediction = _param.check_prediction(prediction)
        self.sigma_data = _checks.check_real(sigma_data, "sigma_data", lo=0, lo_open=True)
        self.clip_denoised = (
            None if clip_denoised is None else _checks.check_real(clip_denoised, "clip_denoised", lo=0, lo_open=True)
        )
        _checks.check_choice(jvp_mode, _JVP_MODES, "jvp_mode")
        self.jvp_mode = jvp_mode
        self._forward_failed = False
        if device is not None:
            net = net.to(device)
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        if not callable(time_input):
            _checks.check_choice(time_input, ("auto", "index", "time"), "time_input", also="or a callable")
        if time_input == "index" and not isinstance(schedule, DiscreteSchedule):
            raise ValueError("time_input='index' needs a DiscreteSchedule")
        self.net = net
        self.schedule = schedule
        self.image_shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        if data_range is None and self.image_shape is not None:
            data_range = (-1.0, 1.0)
        if data_range is not None:
            lo, hi = (_checks.check_real(v, "data_range") for v in data_range)
            if not lo < hi:
                raise ValueError(f"data_range must be (lo, hi) with lo < hi, got {data_range!r}")
            data_range = (lo, hi)
        self.data_range = data_range
        self._time_input = time_input
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size")
        self._product_batch: int | None = None
        if product_batch_size is not None:
            self.product_batch_size = product_batch_size
        self._classes = None if classes is None else np.asarray(classes)
        if class_weights is not None:
            if self._classes is None:
                raise ValueError("class_weights needs classes")
            w = _checks.check_weights(class_weights, len(self._classes), "class_weights")
            self._class_weights: np.ndarray | None = w
        else:
            self._class_weights = None if self._classes is None else np.full(len(self._classes), 1 / len(self._classes))
        self.classifier = classifier

    @property
    def _param0(self):
        return next(iter(self.net.parameters()), None)

    @property
    def _dtype(self):
        p = self._param0
        return p.dtype if p is not None and p.dtype.is_floating_point else _torch().float32

    @property
    def device(self):
        """The device the network (and so every input) is on."""
        p = self._param0
        return p.device if p is not None else _torch().device("cpu")

    _device = device

    @property
    def product_batch_size(self) -> int:
        """Rows per Jacobian product: the value given, else ``batch_size`` on an accelerator and at most 256 on
        the CPU (read from the network's device now, so it follows a network moved after wrapping)."""
        if self._product_batch is not None:
            return self._product_batch
        return min(self.batch_size, 256) if self.device.type == "cpu" else self.batch_size

    @product_batch_size.setter
    def product_batch_size(self, value: int) -> None:
        self._product_batch = _checks.check_positive_int(value, "product_batch_size")

    # -- protocol ---------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        return None if self.image_shape is None else int(np.prod(self.image_shape))

    @property
    def classes(self):
        return None if self._classes is None else self._classes.copy()

    @property
    def class_weights(self):
        return None if self._class_weights is None else self._class_weights.copy()

    def _tau(self, t: float) -> float:
        if callable(self._time_input):
            return float(self._time_input(t))
        if self._time_input == "index" or (self._time_input == "auto" and isinstance(self.schedule, DiscreteSchedule)):
            return float(t) - 1.0
        return float(t)

    def _shape(self, x):
        return x if self.image_shape is None else x.reshape((x.shape[0],) + self.image_shape)

    def _y_tensor(self, y, m):
        torch = _torch()
        if y is None:
            return None
        if self._classes is None:
            raise ValueError("this network was wrapped without classes: pass classes=... to condition on y")
        y_arr = np.broadcast_to(np.asarray(y), (m,))
        known = set(self._classes.tolist())
        bad = set(np.unique(y_arr).tolist()) - known
        if bad:
            raise ValueError(f"y contains unknown classes {sorted(bad)} (classes: {sorted(known)})")
        codes = np.searchsorted(np.sort(self._classes), y_arr)
        order = np.argsort(self._classes)
        return torch.as_tensor(order[codes], dtype=torch.long, device=self._device)

    def _eps_torch(self, xt, t: float, yt=None):
        """eps for a torch batch of flat rows (keeps the graph)."""
        torch = _torch()
        tau = torch.full((xt.shape[0],), self._tau(t), dtype=self._dtype, device=self._device)
        a = torch.as_tensor(float(self.schedule.alpha(t)), dtype=xt.dtype, device=xt.device)
        s = torch.as_tensor(float(self.schedule.sigma(t)), dtype=xt.dtype, device=xt.device)
        x_img = self._shape(xt)
        inp = _param.network_input(x_img, a, s, self.prediction, self.sigma_data)
        out = self.net(inp, tau) if yt is None else self.net(inp, tau, yt)
        if tuple(out.shape) != tuple(x_img.shape):
            raise ValueError(
                f"net returned shape {tuple(out.shape)} for an input of shape {tuple(x_img.shape)}: the wrapped "
                "network must return a prediction of the input's shape (check image_shape, out_channels and "
                "learned-variance outputs)"
            )
        eps = _param.output_to_eps(out, x_img, a, s, self.prediction, self.sigma_data)
        return eps.reshape(xt.shape[0], -1)

    def _points(self, x, name: str = "x") -> np.ndarray:
        x = _checks.as_float_array(x, name)
        if x.ndim == 4 and self.image_shape is not None:
            x = _checks.as_image_rows(x, name, image_shape=self.image_shape)
        if x.ndim != 2 or (self.dim is not None and x.shape[1] != self.dim):
            raise ValueError(f"{name} must have shape (M, {self.dim if self.dim is not None else 'd'}), got {x.shape}")
        return x

    def eps(self, x, t, y=None) -> np.ndarray:
        """The network's noise prediction at flat rows x (M, d), float64 output."""
        torch = _torch()
        x = self._points(x)
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        out = np.empty(x.shape, dtype=np.float64)
        y_rows = None if y is None else np.broadcast_to(np.asarray(y), (x.shape[0],))
        with torch.no_grad():
            for lo in range(0, x.shape[0], self.batch_size):
                xb = torch.as_tensor(x[lo : lo + self.batch_size], dtype=self._dtype, device=self._device)
                yb = None if y_rows is None else self._y_tensor(y_rows[lo : lo + xb.shape[0]], xb.shape[0])
                out[lo : lo + xb.shape[0]] = self._eps_torch(xb, t, yb).double().cpu().numpy()
        return out

    def score(self, x, t, y=None) -> np.ndarray:
        """-eps_theta(x, t[, y]) / sigma_t, shape (M, d)."""
        return -self.eps(x, t, y) / float(self.schedule.sigma(t))

    def denoise(self, x, t, y=None, *, clip: bool = False) -> np.ndarray:
        """(x - sigma_t eps_theta) / alpha_t, shape (M, d): the network's own, unclipped prediction.

        ``clip=True`` clips it to [-c, c] with c = ``clip_denoised`` (what the samplers use).
        """
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        a, s = float(self.schedule.alpha(t)), float(self.schedule.sigma(t))
        if a == 0:
            raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
        d = (np.asarray(x, dtype=np.float64) - s * self.eps(x, t, y)) / a
        if clip and self.clip_denoised is not None:
            np.clip(d, -self.clip_denoised, self.clip_denoised, out=d)
        return d

    def class_posterior(self, x, t) -> np.ndarray:
        """p_t(y | x) from the wrapped classifier, shape (M, C)."""
        if self.classifier is None:
            raise ValueError(
                "no classifier: pass classifier=... (a network's conditional and unconditional predictions give "
                "the posterior only along a chain: use sd.OnlineClassifier)"
            )
        logp = np.asarray(self.classifier(np.asarray(x, dtype=np.float64), t), dtype=np.float64)
        logp = logp - logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    # -- Jacobian of the denoiser ------------------------------------------------------
    def _denoise_fn(self, t: float, y=None):
        a, s = float(self.schedule.alpha(t)), float(self.schedule.sigma(t))

        def f(xt):
            yt = self._y_tensor(y, xt.shape[0]) if y is not None else None
            return (xt - s * self._eps_torch(xt, t, yt)) / a

        return f

    def _products(self, x, t, v, y, fn) -> np.ndarray:
        """Row batches of ``fn(f, xb, vb)`` for the denoiser f at t; validated inputs, float64 output."""
        torch = _torch()
        x = self._points(x)
        v = self._points(v, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the shape of x {x.shape}, got {v.shape}")
        t = _checks.check_time(t, self.schedule, allow_zero=False)
        y_rows = None if y is None else np.broadcast_to(np.asarray(y), (x.shape[0],))
        out = np.empty(x.shape, dtype=np.float64)
        for lo in range(0, x.shape[0], self.product_batch_size):
            hi = min(lo + self.product_batch_size, x.shape[0])
            xb = torch.tensor(x[lo:hi], dtype=self._dtype, device=self._device)
            vb = torch.tensor(v[lo:hi], dtype=self._dtype, device=self._device)
            f = self._denoise_fn(t, None if y_rows is None else y_rows[lo:hi])
            with _math_attention():
                out[lo:hi] = fn(f, xb, vb).detach().double().cpu().numpy()
        return out

    def _jvp_batch(self, f, xb, vb):
        torch = _torch()
        if self.jvp_mode == "reverse" or (self.jvp_mode == "auto" and self._forward_failed):
            return _jvp_reverse(f, xb, vb)
        try:
            return torch.func.jvp(f, (xb,), (vb,))[1]
        except (RuntimeError, NotImplementedError):
            if self.jvp_mode == "forward":
                raise
            # an operator without a usable forward-mode rule: reverse-over-reverse from now on
            self._forward_failed = True
            return _jvp_reverse(f, xb, vb)

    @staticmethod
    def _vjp_batch(f, xb, vb):
        torch = _torch()
        _, pullback = torch.func.vjp(f, xb)
        return pullback(vb)[0]

    def jvp(self, x, t, v, y=None) -> np.ndarray:
        """J v with J = dD_t/dx at each row, shape (M, d) (forward mode, or reverse-over-reverse: ``jvp_mode``)."""
        return self._products(x, t, v, y, self._jvp_batch)

    def vjp(self, x, t, v, y=None) -> np.ndarray:
        """J^T v at each row (reverse mode), shape (M, d)."""
        return self._products(x, t, v, y, self._vjp_batch)

    def hvp(self, x, t, v, y=None) -> np.ndarray:
        """Symmetrised Hessian of log p_t times v: (alpha sym(J) v - v) / sigma^2, shape (M, d).

        From s_t = (alpha D_t - x) / sigma^2 (Tweedie), H = (alpha J - I) / sigma^2 with J the
        denoiser Jacobian. A network's J is not exactly symmetric; the symmetric part
        (J + J^T) / 2 is the Hessian of the closest gradient field, which is what Lanczos
        and MINRES (theory.symmetry_breaking) need. One jvp and one vjp.
        """
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        v = np.asarray(v, dtype=np.float64)
        jv = 0.5 * (self.jvp(x, t, v, y) + self.vjp(x, t, v, y))
        return (a * jv - v) / s2

    def dense_jacobian(self, x, t, y=None) -> np.ndarray:
        """Dense dD_t/dx at one point x (d,) or (1, d): a d x d matrix (small d only)."""
        torch = _torch()
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        xt = torch.as_tensor(x, dtype=self._dtype, device=self._device)
        f = self._denoise_fn(t, y)
        with _math_attention():
            jac = torch.autograd.functional.jacobian(lambda z: f(z.reshape(1, -1))[0], xt[0])
        return jac.detach().double().cpu().numpy()

    def jacobian_spectrum(self, x, t, k: int = 10, *, y=None, which: str = "LA", tol: float = 1e-6) -> np.ndarray:
        """Top-k eigenvalues of the symmetric part of dD_t/dx at one point, by Lanczos.

        ``which`` as for scipy.sparse.linalg.eigsh ("LA": largest algebraic). Cost:
        about 2 x (a few k) Jacobian-vector products; no dense matrix.
        """
        from scipy.sparse.linalg import LinearOperator, eigsh

        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        d = x.shape[1]
        k = _checks.check_positive_int(k, "k")
        if k >= d:
            raise ValueError(f"k must be < d = {d} for Lanczos (use dense_jacobian for the full spectrum)")

        def mv(v):
            v = np.asarray(v, dtype=np.float64).reshape(1, -1)
            return 0.5 * (self.jvp(x, t, v, y) + self.vjp(x, t, v, y)).ravel()

        op = LinearOperator((d, d), matvec=mv, dtype=np.float64)
        vals = eigsh(op, k=k, which=which, tol=tol, return_eigenvectors=False)
        return np.sort(vals)[::-1]


class _DiffusersEps:
    """nn.Module view of a diffusers UNet2DModel: (x, tau[, y]) -> eps = unet(x, tau[, class_labels]).sample.

    ``y`` is the position of each row's class in the adapter's ``classes``; ``embed`` maps positions to
    the UNet's class-embedding indices. An unconditional call on a class-conditional UNet feeds the
    ``null`` index (a classifier-free-guidance network's null label) or is refused by name.
    """

    def __new__(cls, unet, embed=None, null: int | None = None):
        torch = _torch()
        module: Any = torch.nn.Module

        class _Wrap(module):
            def __init__(self, unet):
                super().__init__()
                self.unet = unet
                self.register_buffer("embed", None if embed is None else torch.as_tensor(embed, dtype=torch.long))
                self.null = null

            def forward(self, x, tau, y=None):
                if self.embed is None:
                    return self.unet(x, tau).sample
                if y is None:
                    if self.null is None:
                        raise ValueError(
                            f"this UNet is class-conditional (num_class_embeds={self.unet.config.num_class_embeds}) "
                            "and was wrapped without a null class, so it has no unconditional prediction: pass "
                            "null_class=... to from_diffusers if it was trained with a null label (classifier-free "
                            "guidance), or ask for a class, y=..."
                        )
                    labels = torch.full((x.shape[0],), self.null, dtype=torch.long, device=x.device)
                else:
                    labels = self.embed.to(y.device)[y]
                return self.unet(x, tau, class_labels=labels).sample

        return _Wrap(unet)


def _class_embedding(unet, classes, null_class) -> tuple[np.ndarray | None, np.ndarray | None, int | None]:
    """(class labels, their embedding indices, null index) of a diffusers UNet2DModel (see :func:`from_diffusers`)."""
    cfg = unet.config
    k = cfg.get("num_class_embeds", None) if hasattr(cfg, "get") else getattr(cfg, "num_class_embeds", None)
    embed_type = cfg.get("class_embed_type", None) if hasattr(cfg, "get") else getattr(cfg, "class_embed_type", None)
    if k is None:
        if embed_type is not None:
            raise ValueError(
                f"the UNet's class_embed_type={embed_type!r} takes continuous class inputs; only integer labels "
                "through num_class_embeds are supported"
            )
        if classes is not None or null_class is not None:
            raise ValueError("classes and null_class need a class-conditional UNet (num_class_embeds is None here)")
        return None, None, None
    k = int(k)
    if null_class is not None:
        null_class = int(null_class)
        if not 0 <= null_class < k:
            raise ValueError(f"null_class must be an embedding index in [0, {k}), got {null_class}")
    indices = np.array([i for i in range(k) if i != null_class], dtype=np.int64)
    if classes is None:
        labels = indices.copy()
    else:
        labels = np.asarray(classes)
        if labels.ndim != 1 or labels.size != indices.size or np.unique(labels).size != labels.size:
            raise ValueError(
                f"classes must list {indices.size} distinct labels, one per class embedding "
                f"{'other than the null class ' if null_class is not None else ''}(num_class_embeds={k}), "
                f"got {labels.tolist()!r}"
            )
    return labels, indices, null_class


def diffusers_schedule(scheduler) -> DiscreteSchedule:
    """The :class:`DiscreteSchedule` of a diffusers DDPM-family scheduler, from its own ``alphas_cumprod``.

    Whatever built them (any ``beta_schedule``, ``trained_betas``, ``rescale_betas_zero_snr``),
    the scheduler's float32 ``alphas_cumprod`` are used as they are, except at a zero terminal
    SNR (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed"). There
    the last alpha_bar is 0, where the log-SNR the schedule needs is -inf, and it is replaced by

    - 2**-24, as diffusers' own ``EulerDiscreteScheduler`` does, when that is below the value
      before it (short schedules: 100 steps end at about 4e-7 before the zero);
    - otherwise (1,000 steps end at about 4e-9, below 2**-24) the geometric continuation
      alpha_bar[-2]^2 / alpha_bar[-3], one more step at the log-SNR decrement of the step before.

    Euler's own 2**-24 (``rescale_betas_zero_snr=True``), which is not below the value before it at
    1,000 steps, is replaced by the same rule. The schedule stays strictly decreasing at every
    step count; the value used is the schedule's last alpha_bar.
    """
    ac = getattr(scheduler, "alphas_cumprod", None)
    if ac is None:
        raise ValueError(f"scheduler must have `alphas_cumprod` (a diffusers DDPM-family scheduler), got {scheduler!r}")
    ac = np.array(ac.detach().cpu().numpy() if hasattr(ac, "detach") else ac, dtype=np.float32)
    cfg = scheduler.config if hasattr(scheduler, "config") else {}
    zero_snr = bool(cfg.get("rescale_betas_zero_snr", False))
    if ac.size >= 3 and (ac[-1] == 0 or (zero_snr and ac[-1] >= ac[-2])):
        ac[-1] = _zero_snr_terminal(ac[:-1])
    name = cfg.get("beta_schedule", "custom") if hasattr(cfg, "get") else "custom"
    return DiscreteSchedule(ac, name=f"diffusers-{name}")


def _zero_snr_terminal(alphas_cumprod) -> np.float32:
    """The alpha_bar that stands for a zero terminal SNR after ``alphas_cumprod`` (all steps but the last).

    2**-24 (diffusers' ``EulerDiscreteScheduler``) when it is below the last value given, otherwise
    the geometric continuation a[-1]^2 / a[-2] (see :func:`diffusers_schedule`).
    """
    a = np.asarray(alphas_cumprod, dtype=np.float32)
    if a.ndim != 1 or a.size < 2 or not np.all(a > 0):
        raise ValueError("alphas_cumprod must hold at least 2 positive values before the terminal one")
    euler = np.float32(2.0**-24)
    if euler < a[-1]:
        return euler
    return np.float32(float(a[-1]) ** 2 / float(a[-2]))


def from_diffusers(
    unet,
    scheduler=None,
    *,
    clip_denoised: bool | float | None = None,
    classes=None,
    null_class: int | None = None,
    **kwargs,
) -> TorchScoreModel:
    """Wrap a diffusers ``UNet2DModel`` and the DDPM-family scheduler it was trained with.

    ``unet`` may also be a pipeline object (its ``unet`` and ``scheduler``) or the path of a pipeline
    saved on disk (read by :func:`statphys_diffusion.nets.load_pipeline`, local files only).

    - schedule: the scheduler's own ``alphas_cumprod`` (:func:`diffusers_schedule`), so trained
      betas and zero-terminal-SNR rescaling are honoured;
    - ``prediction_type``: ``epsilon``, ``sample`` or ``v_prediction`` (the adapter converts to eps);
    - ``clip_sample`` / ``clip_sample_range``: applied to :meth:`TorchScoreModel.denoise`, as in
      ``DDPMScheduler.step``; ``clip_denoised`` overrides it (False: no clipping, a number: that range);
    - ``variance_type``: read by :meth:`statphys_diffusion.samplers.DDPMAncestral.from_diffusers`, which
      builds the matching sampler; ``learned``/``learned_range`` (two outputs per channel) and
      ``thresholding=True`` (dynamic thresholding) are refused with a ValueError.

    - class-conditional UNets (``num_class_embeds = K``): ``classes`` are the labels accepted as ``y``
      (default: the embedding indices), one per embedding other than ``null_class``; ``null_class``
      is the embedding index of the null label of a network trained for classifier-free guidance,
      which gives the unconditional prediction. Without one the unconditional call is refused by
      name; the conditional ``score``/``denoise(x, t, y=c)`` (one class, or one per row) always work,
      and so does :class:`~statphys_diffusion.OnlineClassifier` with ``chains="joint"``.

    The network gets the DDPM index t - 1 as its timestep. ``kwargs`` go to
    :class:`TorchScoreModel` (``image_shape`` defaults to the UNet's (in_channels, sample_size,
    sample_size)).
    """
    if isinstance(unet, (str, bytes)) or hasattr(unet, "__fspath__"):
        from .pipelines import load_pipeline

        if scheduler is not None:
            raise ValueError("scheduler must not be given with a pipeline path (the pipeline's own is used)")
        return load_pipeline(unet, clip_denoised=clip_denoised, classes=classes, null_class=null_class, **kwargs)
    if scheduler is None:
        if hasattr(unet, "unet") and hasattr(unet, "scheduler"):
            unet, scheduler = unet.unet, unet.scheduler
        else:
            raise ValueError(
                "scheduler is required with a bare UNet (pass the scheduler it was trained with, or a pipeline)"
            )
    if not hasattr(unet, "config") or not callable(unet):
        raise ValueError(f"unet must be a diffusers UNet2DModel, got {type(unet).__name__}")
    if not hasattr(scheduler, "config"):
        raise ValueError(f"scheduler must be a diffusers scheduler, got {type(scheduler).__name__}")
    labels, embed, null = _class_embedding(unet, classes, null_class)
    cfg = scheduler.config
    prediction = cfg.get("prediction_type", "epsilon")
    _checks.check_choice(prediction, ("epsilon", "sample", "v_prediction"), "prediction_type")
    if cfg.get("thresholding", False):
        raise ValueError("thresholding=True (dynamic thresholding, Saharia et al. 2022) is not supported")
    diffusers_variance(cfg)  # refuses learned variances early
    if clip_denoised is None or clip_denoised is True:
        clip = float(cfg.get("clip_sample_range", 1.0)) if (clip_denoised or cfg.get("clip_sample", False)) else None
    elif clip_denoised is False:
        clip = None
    else:
        clip = float(clip_denoised)
    size = unet.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    kwargs.setdefault("image_shape", (unet.config.in_channels,) + size)
    return TorchScoreModel(
        _DiffusersEps(unet, embed, null),
        diffusers_schedule(scheduler),
        time_input="index",
        classes=labels,
        prediction=prediction,
        clip_denoised=clip,
        **kwargs,
    )
