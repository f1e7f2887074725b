"""One rng policy (docs/user_guide/conventions.rst): None -> fresh entropy, an int -> a seed, a Generator as is."""

from __future__ import annotations

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion._checks import check_rng
from statphys_diffusion.metrics import sliced_wasserstein
from statphys_diffusion.samplers import DDIM


def test_check_rng_semantics():
    g = np.random.default_rng(5)
    assert check_rng(g) is g
    assert check_rng(7).random() == np.random.default_rng(7).random()
    assert check_rng(np.int64(7)).random() == np.random.default_rng(7).random()
    assert check_rng(None).random() != check_rng(None).random()  # fresh entropy each time
    for bad in (True, 1.5, "0", np.random.RandomState(0), -1):
        with pytest.raises(ValueError, match="rng"):
            check_rng(bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda rng: sliced_wasserstein(np.eye(3), np.eye(3)[::-1] * 2, n_projections=8, rng=rng),
        lambda rng: float(sd.GaussianMixture.isotropic([[0.0, 1.0]], 1.0).sample(4, 0.5, rng=rng).x.sum()),
        lambda rng: float(DDIM(4).sample(sd.GaussianMixture.isotropic([[0.0]], 1.0), n=3, rng=rng).x.sum()),
        lambda rng: float(sd.conditional_entropy(_labelled(), [0.5], n=50, method="monte_carlo", rng=rng).value[0]),
    ],
)
def test_public_functions_follow_the_policy(call):
    assert call(3) == call(3)  # an int is a seed
    assert call(np.random.default_rng(3)) == call(3)
    assert call(None) != call(None)  # None: fresh entropy, not a hidden seed
    with pytest.raises(ValueError, match="rng"):
        call(True)


def _labelled():
    return sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.5, 0.5], labels=[0, 1])


def test_positional_rng_still_works_for_one_release_with_a_warning():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.2, 0.2], labels=[0, 1])
    new = sd.exact_cloning_agreement(gm, [0.3], 40, rng=5)
    with pytest.warns(DeprecationWarning, match="pass rng by keyword"):
        old = sd.exact_cloning_agreement(gm, [0.3], 40, np.random.default_rng(5))
    assert old.phi[0] == new.phi[0]
    with pytest.raises(TypeError, match="rng by keyword"):
        sd.exact_cloning_agreement(gm, [0.3], 40, 5, rng=5)
    with pytest.warns(DeprecationWarning):
        res = sd.cloning_agreement(gm, [0.3], 4, np.random.default_rng(0), n_steps=8)
    assert res.phi.shape == (1,)


@pytest.mark.parametrize(
    "old, new",
    [
        (  # a model's draws: sample(n, t, rng) -> sample(n, t, rng=...)
            lambda: _labelled().sample(6, 0.4, np.random.default_rng(2)).x,
            lambda: _labelled().sample(6, 0.4, rng=2).x,
        ),
        (  # a random manifold: random(d, m, variances, rng) -> random(d, m, variances, rng=...)
            lambda: sd.LinearManifold.random(5, 2, [1.0, 0.5], np.random.default_rng(4)).basis,
            lambda: sd.LinearManifold.random(5, 2, [1.0, 0.5], rng=4).basis,
        ),
        (  # the late-start Gaussian: sample(n, rng) -> sample(n, rng=...)
            lambda: sd.gaussian_late_init(_labelled(), 0.5).sample(7, np.random.default_rng(1)),
            lambda: sd.gaussian_late_init(_labelled(), 0.5).sample(7, rng=1),
        ),
    ],
)
def test_models_take_rng_by_keyword_and_a_positional_one_warns(old, new):
    with pytest.warns(DeprecationWarning, match="pass rng by keyword"):
        a = old()
    np.testing.assert_array_equal(a, new())
