"""Arguments that take one of a few names: every public entry point refuses anything else with one message
shape, "<argument> must be one of <every allowed value>, got <what was given>" (``_checks.check_choice``),
including values whose membership test would itself fail (a list, an array)."""

import re

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion import _checks

OU = sd.OrnsteinUhlenbeck()
GM = sd.GaussianMixture.isotropic([[0.0, 0.0], [1.0, 1.0]], [0.5, 0.5], labels=[0, 1])
X = np.zeros((2, 2))


@pytest.mark.parametrize("bad", ["nope", ["a"], {"a": 1}, np.arange(3), None, 3.5])
def test_check_choice_refuses_anything_else_by_name(bad):
    with pytest.raises(ValueError, match=r"^kind must be one of 'a', 'b' or 'c', got "):
        _checks.check_choice(bad, ("a", "b", "c"), "kind")


def test_check_choice_passes_allowed_values_through_and_adds_alternatives():
    assert _checks.check_choice("b", ("a", "b"), "kind") == "b"
    with pytest.raises(ValueError, match=r"^kind must be one of 'a' or a callable, got 'q'$"):
        _checks.check_choice("q", ("a",), "kind", also="or a callable")
    with pytest.raises(ValueError, match=r"^kind must be one of 'a', 'b' or a callable, got 'q'$"):
        _checks.check_choice("q", ("a", "b"), "kind", also="or a callable")
    with pytest.raises(ValueError, match=r"^kind must be one of 'a' or 'b' \(the two\), got 'q'$"):
        _checks.check_choice("q", ("a", "b"), "kind", also="(the two)")
    # a long value is shortened, not printed whole
    with pytest.raises(ValueError) as err:
        _checks.check_choice("x" * 500, ("a",), "kind")
    assert len(str(err.value)) < 150


CASES = [
    (lambda v: sd.DDIM(5, spacing=v), "spacing", ("uniform", "edm")),
    (lambda v: sd.DDPMAncestral(5, variance=v), "variance", ("fixed_small", "fixed_large")),
    (lambda v: sd.convert_prediction(X, X, 0.5, OU, source=v, target="x0"), "source", ("eps", "x0", "v", "score")),
    (lambda v: sd.entropy_rate(GM, [0.1, 0.5], method=v), "method", ("auto", "quadrature", "monte_carlo")),
    (lambda v: sd.flow_log_likelihood(GM, X, 0.5, products=v), "products", ("auto", "vjp", "hvp")),
    (lambda v: sd.fixed_point_residual(GM, X, 0.5, dynamics=v), "dynamics", ("sde", "ode")),
    (lambda v: sd.speciation_time(GM, form=v), "form", ("exact", "paper")),
    (
        lambda v: sd.GaussianMixture(np.zeros((1, 2)), np.eye(2)[None], covariance_type=v),
        "covariance_type",
        ("isotropic", "diagonal", "full", "lowrank"),
    ),
    (lambda v: sd.ddpm_time_sequence(5, skip=v), "skip", ("uniform", "quad")),
    (
        lambda v: sd.DiscreteSchedule.from_diffusers(beta_schedule=v),
        "beta_schedule",
        ("linear", "scaled_linear", "squaredcos_cap_v2"),
    ),
]


@pytest.mark.parametrize("call,name,allowed", CASES)
@pytest.mark.parametrize("bad", ["nonsense", ["uniform"]])
def test_public_entry_points_name_the_argument_and_every_allowed_value(call, name, allowed, bad):
    with pytest.raises(ValueError, match=rf"^{name} must be one of ") as err:
        call(bad)
    message = str(err.value)
    for a in allowed:
        assert repr(a) in message, (a, message)
    assert re.search(r", got .+$", message)


@pytest.mark.parametrize("bad", ["nonsense", ["auto"]])
def test_adapter_time_input_names_every_allowed_value_and_the_callable(bad):
    torch = pytest.importorskip("torch")
    from statphys_diffusion import nets

    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"^time_input must be one of 'auto', 'index', 'time' or a callable, got "):
        nets.TorchScoreModel(net, sd.DiscreteSchedule.linear(), time_input=bad)
