r"""What a network predicts, and how its output becomes eps (one home for train and adapter).

With x_t = alpha x_0 + sigma eps, a network F(input, tau) is trained to predict one of

- ``"eps"``: eps (Ho et al. 2020); eps_hat = F(x_t).
- ``"x0"``: the clean sample; eps_hat = (x_t - alpha F(x_t)) / sigma.
- ``"v"``: v = alpha eps - sigma x_0 (Salimans & Ho 2022); eps_hat = (sigma x_t + alpha F) / (alpha^2 + sigma^2).
- ``"edm"``: Karras et al. (2022, Table 1) preconditioning in the EDM variable x^ = x_t / alpha,
  s = sigma / alpha: D(x^) = c_skip x^ + c_out F(c_in x^, tau) with
  c_skip = s_d^2 / (s^2 + s_d^2), c_out = s s_d / sqrt(s^2 + s_d^2), c_in = 1 / sqrt(s^2 + s_d^2),
  s_d = ``sigma_data`` (0.5, EDM's value for images in [-1, 1]); eps_hat = (x_t - alpha D) / sigma.

The training loss is the plain mean squared error on F against the target that
makes each parametrisation exact: eps, x_0, v, or (x_0 - c_skip x^) / c_out for
EDM. With x_t fixed, the errors are tied by alpha dx_0 = -sigma d eps, so in terms
of the eps objective these are the weightings w = 1 (eps), 1 / snr (x0),
(alpha^2 + sigma^2)^2 / alpha^2 (v; 1 + 1 / snr on a variance-preserving schedule)
and 1 + snr_d / snr with snr_d = 1 / s_d^2 (EDM, whose c_out makes the target of F
unit-variance at every noise level; Karras et al. eq. 8).
What differs most at low noise is the output, not the weight: a network that snaps
x_t onto a training point must output d eps/dx ~ 1 / sigma as an eps-predictor but
an O(1) function as an x0-, v- or EDM-predictor. An eps-network that has not
converged at small sigma is therefore the identity denoiser D = (x - sigma eps) / alpha
there. How often low noise levels are drawn is the separate ``noise`` option of
:class:`~statphys_diffusion.nets.TrainConfig`.

All functions take torch tensors; ``alpha`` and ``sigma`` broadcast against x
(shape (B, 1, ...) or scalars).
"""

from __future__ import annotations

from .. import _checks

PREDICTIONS = ("eps", "x0", "v", "edm")
_DIFFUSERS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}


def check_prediction(prediction: str) -> str:
    """Validate a parametrisation name (diffusers' names ``epsilon``/``sample``/``v_prediction`` accepted)."""
    _checks.check_choice(prediction, tuple(PREDICTIONS) + tuple(_DIFFUSERS), "prediction")
    return _DIFFUSERS.get(prediction, prediction)


def _edm_coefficients(alpha, sigma, sigma_data: float):
    s = sigma / alpha
    den = s * s + sigma_data * sigma_data
    c_skip = sigma_data * sigma_data / den
    c_out = s * sigma_data / den.sqrt()
    c_in = 1.0 / den.sqrt()
    return c_skip, c_out, c_in


def network_input(x, alpha, sigma, prediction: str, sigma_data: float = 0.5):
    """What the network is fed at x_t: x_t itself, or c_in x_t / alpha for EDM."""
    if prediction != "edm":
        return x
    _, _, c_in = _edm_coefficients(alpha, sigma, sigma_data)
    return c_in * (x / alpha)


def output_to_eps(out, x, alpha, sigma, prediction: str, sigma_data: float = 0.5):
    """eps_hat from the network output ``out`` at x_t = ``x`` (the formulas of the module docstring)."""
    if prediction == "eps":
        return out
    if prediction == "x0":
        return (x - alpha * out) / sigma
    if prediction == "v":
        return (sigma * x + alpha * out) / (alpha * alpha + sigma * sigma)
    c_skip, c_out, _ = _edm_coefficients(alpha, sigma, sigma_data)
    d = c_skip * (x / alpha) + c_out * out
    return (x - alpha * d) / sigma


def training_target(x0, eps, alpha, sigma, prediction: str, sigma_data: float = 0.5):
    """The regression target of F for one (x_0, eps, alpha, sigma) draw."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    if prediction == "v":
        return alpha * eps - sigma * x0
    c_skip, c_out, _ = _edm_coefficients(alpha, sigma, sigma_data)
    x_hat = x0 + (sigma / alpha) * eps
    return (x0 - c_skip * x_hat) / c_out
