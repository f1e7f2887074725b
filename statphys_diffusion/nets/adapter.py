r"""Any torch noise-prediction network as a score model for the analysis tools.

A network eps_theta(x_t, tau[, y]) trained on x_t = alpha_t x_0 + sigma_t eps
gives (Tweedie; Vincent 2011)

    s_t(x) = -eps_theta(x, tau(t)) / sigma_t,    D_t(x) = (x - sigma_t eps_theta) / alpha_t,

where tau(t) is what the network takes as its time input: the DDPM index
t - 1 on a :class:`~statphys_diffusion.schedules.DiscreteSchedule` (diffusers'
``timesteps``), the schedule time itself otherwise, or any callable. Rows of
x (M, d) are reshaped to ``image_shape`` for convolutional networks.

The Jacobian of the denoiser is reached only through products:
J v by forward mode (``torch.func.jvp``, with attention on the math kernel,
which has forward-mode rules) and J^T v by reverse mode; the top-k
spectrum of its symmetric part (J + J^T)/2 by Lanczos (scipy ``eigsh``) on
those products, never a dense d x d matrix unless :meth:`dense_jacobian` is
called. For an exact score the Jacobian is symmetric (a posterior covariance
times alpha / sigma^2); for a network the symmetric part is the natural
analogue (Achilli et al. 2024 use the spectrum of the learned score's Jacobian).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _checks
from ..schedules import DiscreteSchedule, Schedule

__all__ = ["TorchScoreModel", "from_diffusers"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError("statphys_diffusion.nets needs torch: pip install torch (CPU build: torch==2.13.0)") from exc
    return torch


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
        Called as ``net(x, tau)`` or, with a class, ``net(x, tau, y)``; returns eps.
    schedule : Schedule
        The schedule the network was trained with.
    image_shape : tuple, optional
        (C, H, W) the network expects; rows of length C*H*W are reshaped.
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
    """

    def __init__(
        self,
        net,
        schedule: Schedule,
        *,
        image_shape: tuple | None = None,
        time_input: str | Callable = "auto",
        classes=None,
        class_weights=None,
        classifier: Callable | None = None,
        batch_size: int = 1024,
    ):
        torch = _torch()
        if not isinstance(net, torch.nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        if not (callable(time_input) or time_input in ("auto", "index", "time")):
            raise ValueError(f"time_input must be 'auto', 'index', 'time' or a callable, got {time_input!r}")
        if time_input == "index" and not isinstance(schedule, DiscreteSchedule):
            raise ValueError("time_input='index' needs a DiscreteSchedule")
        self.net = net
        self.schedule = schedule
        self.image_shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        self._time_input = time_input
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size")
        self._classes = None if classes is None else np.asarray(classes)
        if class_weights is not None:
            if self._classes is None:
                raise ValueError("class_weights needs classes")
            w = _checks.check_weights(class_weights, len(self._classes), "class_weights")
            self._class_weights = w
        else:
            self._class_weights = None if self._classes is None else np.full(len(self._classes), 1 / len(self._classes))
        self.classifier = classifier
        p = next(iter(net.parameters()), None)
        self._dtype = p.dtype if p is not None else torch.float32
        self._device = p.device if p is not None else torch.device("cpu")

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
        args = (self._shape(xt), tau) if yt is None else (self._shape(xt), tau, yt)
        return self.net(*args).reshape(xt.shape[0], -1)

    def eps(self, x, t, y=None) -> np.ndarray:
        """The network's noise prediction at flat rows x (M, d), float64 output."""
        torch = _torch()
        x = _checks.as_float_array(x, "x")
        if x.ndim != 2 or (self.dim is not None and x.shape[1] != self.dim):
            raise ValueError(f"x must have shape (M, {self.dim if self.dim is not None else 'd'}), got {x.shape}")
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

    def denoise(self, x, t, y=None) -> np.ndarray:
        """(x - sigma_t eps_theta) / alpha_t, shape (M, d)."""
        a, s = float(self.schedule.alpha(t)), float(self.schedule.sigma(t))
        if a == 0:
            raise ValueError(f"t={t} has alpha_t = 0: the denoiser is undefined there")
        return (np.asarray(x, dtype=np.float64) - s * self.eps(x, t, y)) / a

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

    def jvp(self, x, t, v, y=None) -> np.ndarray:
        """J v with J = dD_t/dx at each row (forward mode), shape (M, d)."""
        torch = _torch()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=self._dtype, device=self._device)
        vt = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=self._dtype, device=self._device)
        # attention runs on the plain "math" kernel, the one with forward-mode rules
        with _math_attention():
            _, out = torch.func.jvp(self._denoise_fn(t, y), (xt,), (vt,))
        return out.detach().double().cpu().numpy()

    def vjp(self, x, t, v, y=None) -> np.ndarray:
        """J^T v at each row (reverse mode), shape (M, d)."""
        torch = _torch()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=self._dtype, device=self._device)
        vt = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=self._dtype, device=self._device)
        with _math_attention():
            _, fn = torch.func.vjp(self._denoise_fn(t, y), xt)
            out = fn(vt)[0]
        return out.detach().double().cpu().numpy()

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
    """nn.Module view of a diffusers UNet2DModel: (x, tau[, y]) -> eps = unet(x, tau).sample."""

    def __new__(cls, unet):
        torch = _torch()

        class _Wrap(torch.nn.Module):
            def __init__(self, unet):
                super().__init__()
                self.unet = unet

            def forward(self, x, tau, y=None):
                kwargs = {} if y is None else {"class_labels": y}
                return self.unet(x, tau, **kwargs).sample

        return _Wrap(unet)


def from_diffusers(unet, scheduler, **kwargs) -> TorchScoreModel:
    """Wrap a diffusers ``UNet2DModel`` trained with a ``DDPMScheduler`` (epsilon prediction).

    The schedule is rebuilt from the scheduler's configuration
    (:meth:`DiscreteSchedule.from_diffusers`, bit-identical ``alphas_cumprod``); the
    network gets the DDPM index t - 1 as its timestep. ``kwargs`` go to
    :class:`TorchScoreModel` (``image_shape`` defaults to the UNet's
    (in_channels, sample_size, sample_size)).
    """
    cfg = scheduler.config
    if getattr(cfg, "prediction_type", "epsilon") != "epsilon":
        raise ValueError(f"only epsilon-prediction schedulers are supported, got {cfg.prediction_type!r}")
    schedule = DiscreteSchedule.from_diffusers(
        cfg.beta_schedule, cfg.num_train_timesteps, float(cfg.beta_start), float(cfg.beta_end)
    )
    size = unet.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    kwargs.setdefault("image_shape", (unet.config.in_channels,) + size)
    return TorchScoreModel(_DiffusersEps(unet), schedule, time_input="index", **kwargs)
