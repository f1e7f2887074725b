"""Issue 32, "bad input, everywhere": each kind of bad input the issue names gets a ValueError or
TypeError that names the user's argument, across the public API; nothing is coerced or ignored."""

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion import datasets
from statphys_diffusion.samplers import DDIM, initial_noise, time_grid

GM = sd.GaussianMixture.isotropic([[0.0, 0.0], [1.0, 1.0]], [0.5, 0.5], labels=[0, 1])
OU = sd.OrnsteinUhlenbeck()
X = np.zeros((4, 2))

CASES = [
    # time grids: negative counts, negative starts, strings
    (lambda: time_grid(OU, -3, 1.0, 0.0), "n_steps"),
    (lambda: time_grid(OU, 3, -1.0, 0.0), "t_start"),
    (lambda: time_grid(OU, 3, 0.1, 0.5), "t_start must be later"),
    (lambda: DDIM(times=["1", "0.5"]), "times must be numeric"),
    (lambda: initial_noise(OU, -2, 2, 1.0, np.random.default_rng(0)), "n must be"),
    (lambda: initial_noise(OU, 2, 2, -1.0, np.random.default_rng(0)), "t_start"),
    # complex values made real
    (lambda: GM.score(X + 1j, 0.5), "x must be real"),
    (lambda: sd.EmpiricalDistribution(np.eye(3) + 1j), "points must be real"),
    (lambda: sd.DiscreteSchedule(np.linspace(0.99, 0.01, 10) + 0j), "alphas_cumprod"),
    (lambda: sd.covariance_spectrum(np.zeros((5, 2)) + 1j), "data must be real"),
    (lambda: sd.convert_prediction(X + 1j, X, 0.5, OU, source="eps", target="x0"), "value must be real"),
    (lambda: sd.match_time(0.5 + 1j, OU, sd.VPSDE()), "t must be real"),
    # integers beyond float arithmetic
    (lambda: sd.GaussianMixture.isotropic([[10**400]], 1.0), "means must be numeric"),
    (lambda: sd.collapse_time(10**400, [1.0]), "n_points"),
    (lambda: GM.sample(10**30, 0.5, rng=0), "n must be at most"),
    # strings where numbers are expected
    (lambda: GM.score(X, "0.5"), "t must be a number"),
    (lambda: sd.central_branch(GM, "abc"), "times must be numeric"),
    (lambda: DDIM(5, eta="0.1"), "eta"),
    (lambda: sd.two_delta_critical_alpha2("1"), "m must be"),
    (lambda: sd.memorized_fraction(np.array([0.2, 0.5]), threshold="0.3"), "threshold"),
    (lambda: sd.run_sweep(len, "abc", progress=False), "configs"),
    # start points of the wrong shape; a start array and a count both given
    (lambda: DDIM(5).sample(GM, x_init=np.zeros((3, 3)), rng=0), "x_init must have shape"),
    (lambda: DDIM(5).sample(GM, x_init=np.zeros((3, 2)), n=5, rng=0), "not both"),
    (lambda: sd.OnlineClassifier(3).run(GM, np.zeros((2, 2)), n=5, rng=0), "not both"),
    (lambda: sd.denoiser_from_score(np.zeros((2, 2)), np.zeros((3, 2)), 0.5, OU), "score must have the shape"),
    # negative distance ratios
    (lambda: sd.memorized_fraction(np.array([-0.5, 0.2, 0.9])), "ratio must be non-negative"),
    # grid sizes
    (lambda: sd.symmetry_breaking_time(GM, n_grid=0), "n_grid"),
    (lambda: sd.fixed_points_1d(sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1), 0.5, n_grid=-3), "n_grid"),
    # the user's argument, not an internal name
    (lambda: sd.EmpiricalDistribution(np.array([[1e300, 0.0]])), "^points"),
]


@pytest.mark.parametrize("call,needle", CASES)
def test_each_kind_of_bad_input_is_refused_by_name(call, needle):
    with pytest.raises((ValueError, TypeError), match=needle):
        call()


def test_an_empty_class_list_does_not_give_an_empty_data_set(tmp_path):
    """load_cifar10(classes=[]) used to return an empty data set; a repeated class is refused too."""
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "train" / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((32, 32, 3), 40 * i, dtype=np.uint8)).save(tmp_path / "train" / c / f"{i}.png")
    kw = {"cache_dir": tmp_path / "cache", "progress": False}
    assert datasets.load_cifar10(tmp_path, classes=["dog"], **kw).images.shape[0] == 2
    with pytest.raises(ValueError, match="classes must name at least one class"):
        datasets.load_cifar10(tmp_path, classes=[], **kw)
    with pytest.raises(ValueError, match="twice"):
        datasets.load_cifar10(tmp_path, classes=["dog", "dog"], **kw)
    with pytest.raises(ValueError, match="list of class names"):
        datasets.load_cifar10(tmp_path, classes="dog", **kw)
