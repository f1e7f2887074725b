"""The progress-bar policy: each call's progress= decides, STATPHYS_DIFFUSION_PROGRESS overrides."""

import pytest

import statphys_diffusion as sd
from statphys_diffusion import _progress
from statphys_diffusion.samplers import DDIM


def test_call_decides_when_the_environment_is_unset(monkeypatch):
    monkeypatch.delenv(_progress.ENV, raising=False)
    items = [1, 2, 3]
    assert _progress.iterate(items, False, "x") is items
    bar = _progress.iterate(items, True, "x")
    assert bar is not items and list(bar) == items
    assert _progress.bar(False, "x", 3) is None


@pytest.mark.parametrize("value", ["0", "off", "False", " no "])
def test_environment_turns_every_bar_off(monkeypatch, capsys, value):
    monkeypatch.setenv(_progress.ENV, value)
    items = [1, 2]
    assert _progress.iterate(items, True, "x") is items
    assert _progress.bar(True, "x", 2) is None
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1)
    DDIM(20, progress=True).sample(gm, n=4, rng=0)
    assert capsys.readouterr().err == ""


def test_environment_turns_bars_on_and_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv(_progress.ENV, "1")
    assert _progress.iterate([1], False, "x") is not None and _progress.bar(False, "x", 1) is not None
    monkeypatch.setenv(_progress.ENV, "maybe")
    with pytest.raises(ValueError, match="STATPHYS_DIFFUSION_PROGRESS must be one of"):
        _progress.enabled(True)
    monkeypatch.setenv(_progress.ENV, "")
    assert _progress.enabled(False) is False


def _labelled():
    return sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.3, 0.3], labels=[0, 1])


@pytest.mark.parametrize(
    "call, desc",
    [
        (
            lambda p: sd.conditional_entropy(_labelled(), [0.2, 0.5], n=50, method="monte_carlo", rng=0, progress=p),
            "H(Y",
        ),
        (
            lambda p: sd.mutual_information(_labelled(), [0.2, 0.5], n=50, method="monte_carlo", rng=0, progress=p),
            "H(Y",
        ),
        (lambda p: sd.exact_cloning_agreement(_labelled(), [0.2, 0.5], 30, rng=0, progress=p), "cloning agreement"),
        (lambda p: sd.track_central_fixed_point(_labelled(), [0.8, 0.5], progress=p), "central fixed point"),
    ],
)
def test_long_theory_calls_take_progress(monkeypatch, capsys, call, desc):
    monkeypatch.delenv(_progress.ENV, raising=False)
    quiet = call(False)
    assert capsys.readouterr().err == ""
    loud = call(True)
    assert desc in capsys.readouterr().err
    # the bar changes nothing in the result
    a = getattr(quiet, "value", getattr(quiet, "phi", quiet))
    b = getattr(loud, "value", getattr(loud, "phi", loud))
    assert (a == b).all()
