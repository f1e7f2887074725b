"""Bad input to the models raises ValueError naming the argument."""

import numpy as np
import pytest

import statphys_diffusion as sd

GM = sd.GaussianMixture.isotropic([[0.0, 0.0], [1.0, 1.0]], [0.5, 0.5], labels=[0, 1])
EMP = sd.EmpiricalDistribution(np.eye(3))
X = np.zeros((4, 2))

CASES = [
    # (callable, substring of the message naming the argument)
    (lambda: sd.GaussianMixture.isotropic(np.zeros(3), [1.0]), "means"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], [1.0, -1.0]), "covariances"),
    (lambda: sd.GaussianMixture.diagonal([[0.0, 0.0]], [[1.0]]), "covariances"),
    (lambda: sd.GaussianMixture.full([[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]]), "positive definite"),
    (lambda: sd.GaussianMixture.full([[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
    (lambda: sd.GaussianMixture.full([[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]] * 2), "covariances"),
    (lambda: sd.GaussianMixture.low_rank([[0.0, 0.0]], [[[1.0], [1.0]]], [[1.0]]), "orthonormal"),
    (lambda: sd.GaussianMixture.low_rank([[0.0, 0.0]], [[[1.0], [0.0]]], [[-1.0]]), "variances"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0, [0.5, 0.6]), "weights"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0, [1.5, -0.5]), "weights"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0, labels=[0]), "labels"),
    (lambda: sd.GaussianMixture.isotropic([[np.nan], [1.0]], 1.0), "means"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0, schedule="ou"), "schedule"),
    (lambda: GM.score(np.zeros((4, 3)), 0.5), "x"),
    (lambda: GM.score(np.zeros(2), 0.5), "x"),
    (lambda: GM.score(np.full((4, 2), np.inf), 0.5), "x"),
    (lambda: GM.score(X, -0.1), "t"),
    (lambda: GM.score(X, np.nan), "t"),
    (lambda: GM.score(X, [0.1, 0.2]), "t"),
    (lambda: sd.GaussianMixture.isotropic([[0.0], [1.0]], 1.0, schedule=sd.VPSDE()).score(np.zeros((1, 1)), 1.5), "t"),
    (lambda: EMP.score(np.zeros((1, 3)), 0.0), "t"),
    (lambda: GM.hvp(X, 0.5, np.zeros((3, 2))), "v"),
    (lambda: EMP.class_posterior(np.zeros((1, 3)), 0.5), "labels"),
    (lambda: GM.sample(0, 0.5), "n"),
    (lambda: GM.sample(3, 0.5, rng=True), "rng"),
    (lambda: sd.EmpiricalDistribution(np.zeros(5)), "points"),
    (lambda: sd.LinearManifold(np.eye(3)[:, :2], [1.0]), "variances"),
    (lambda: sd.LinearManifold(np.eye(3)[:, :2], [1.0, 0.0]), "variances"),
    (lambda: sd.LinearManifold(np.ones((3, 2)), [1.0, 1.0]), "orthonormal"),
    (lambda: sd.LinearManifold(np.eye(3)[:, :2], [1.0, 1.0], offset=np.zeros(2)), "offset"),
    (
        lambda: sd.GaussianMixture.isotropic([[0.0]], 1.0, schedule=sd.FlowMatching()).denoise(np.zeros((1, 1)), 1.0),
        "alpha",
    ),
]


@pytest.mark.parametrize("call,needle", CASES)
def test_bad_input_names_the_problem(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_the_quoted_integer_and_interval_cases():
    """Issue 18's quoted calls: NaN, inf and None where a count is expected get a named ValueError, and
    memorized_fraction's default interval is informative when every sample is a copy."""
    import statphys_diffusion as sd
    from statphys_diffusion.samplers import DDIM

    gm = sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        gm.sample(float("inf"), 0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        DDIM(float("nan"))
    with pytest.raises(ValueError, match="n_points and eigenvalues"):
        sd.collapse_time(None, [1.0])
    with pytest.raises(ValueError, match="n_points must be a positive integer"):
        sd.collapse_time(True, [1.0])
    frac, lo, hi = sd.memorized_fraction(np.zeros(50))
    assert frac == 1.0 and lo < 0.95 and hi == 1.0
