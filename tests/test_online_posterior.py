"""The online Bayes classifier along a DDPM chain converges to the exact p(y | x_t)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


def _model():
    return sd.GaussianMixture.isotropic([[-1.0], [0.3], [1.5]], [0.05, 0.05, 0.1], [0.3, 0.3, 0.4], labels=[0, 1, 2])


def test_tracked_posterior_converges_to_the_exact_one():
    m = _model()
    errs = []
    for steps in (50, 200, 800):
        tr = sd.OnlineClassifier(steps).run(
            m, n=1500, t_start=6.0, t_end=0.05, rng=np.random.default_rng(0), return_trajectory=True
        )
        exact = m.class_posterior(tr.x, 0.05)
        errs.append(np.abs(tr.posterior[-1] - exact).sum(axis=1).mean())
        # along the whole chain, not only at the end: compare every 10th step
        post = tr.posterior
        mid = [
            np.abs(post[i] - m.class_posterior(tr.trajectory[i], tr.times[i])).sum(axis=1).mean()
            for i in range(0, steps + 1, steps // 10)
        ]
        assert max(mid) < 2 * errs[-1] + 0.02
    # total-variation error (x2) shrinks with the step count (first order: ~x4 per x4 steps)
    assert errs[0] > 2 * errs[1] > 4 * errs[2]
    assert errs[2] < 0.02


def test_trajectory_prior_and_entropy():
    m = sd.GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], 0.1, labels=[0, 1, 2])
    rng = np.random.default_rng(1)
    tr = sd.OnlineClassifier(300, prior="exact").run(m, n=500, t_start=3.0, t_end=0.02, rng=rng, return_trajectory=True)
    assert tr.trajectory.shape == (301, 500, 2) and tr.log_posterior.shape == (301, 500, 3)
    np.testing.assert_allclose(tr.posterior.sum(axis=2), 1.0, atol=1e-12)
    err = [
        np.abs(tr.posterior[i] - m.class_posterior(tr.trajectory[i], tr.times[i])).sum(1).mean()
        for i in (100, 200, 300)
    ]
    assert max(err) < 0.05
    h = tr.entropy()
    # decisions get made: the mean entropy of the tracked posterior falls from log 3 toward 0
    assert h[0].mean() > 1.0 and h[-1].mean() < 0.05
    uni = sd.OnlineClassifier(10, prior="uniform").run(m, n=5, t_start=3.0, t_end=0.1, rng=rng)
    np.testing.assert_allclose(uni.posterior[0], 1 / 3)


def test_bad_input():
    m = _model()
    unl = sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1)
    with pytest.raises(ValueError, match="classes"):
        sd.OnlineClassifier(5).run(unl, n=3)
    with pytest.raises(ValueError, match="prior"):
        sd.OnlineClassifier(5, prior=[0.5, 0.5]).run(m, n=3, t_start=2.0)
    with pytest.raises(ValueError, match="prior"):
        sd.OnlineClassifier(5, prior="flat").run(m, n=3, t_start=2.0)
    with pytest.raises(ValueError, match="t_start"):
        sd.OnlineClassifier(5).run(m.with_schedule(sd.VPSDE()), n=3, t_start=2.0)
    with pytest.raises(ValueError, match="denoise"):
        sd.OnlineClassifier(5).run(object(), n=3)


def test_joint_chains_track_the_exact_posterior_of_an_exact_model():
    """Conditional chains of each class, tracked with conditional kernels only: for an exact model
    the joint model is the model itself, so the tracked posterior approaches p_t(c | x_t) along the
    chains (the same first-order discretisation error as null chains: 0.05 in TV at 400 steps), and
    the chains end in their own class."""
    m = _model()
    tr = sd.OnlineClassifier(400).run(
        m, n=300, t_start=6.0, t_end=0.05, rng=np.random.default_rng(3), return_trajectory=True, chains="joint"
    )
    assert tr.x.shape == (900, 1) and list(np.unique(tr.labels, return_counts=True)[1]) == [300, 300, 300]
    err = [np.abs(tr.posterior[i] - m.class_posterior(tr.trajectory[i], tr.times[i])).sum(1).mean() for i in (200, 400)]
    assert max(err) < 0.05
    # the tracked decision is the exact Bayes decision at the end point, and it names the generating
    # class as often as Bayes' rule can, E[max_c p(c | x)] (the classes overlap), within 3 s.e. (0.03)
    exact_end = m.class_posterior(tr.x, 0.05)
    assert np.mean(np.argmax(tr.posterior[-1], axis=1) == np.argmax(exact_end, axis=1)) > 0.97
    code = np.searchsorted(m.classes, tr.labels)
    hit = np.mean(np.argmax(tr.posterior[-1], axis=1) == code)
    assert abs(hit - exact_end.max(axis=1).mean()) < 0.03
    coarse = tr.coarse([[0], [1, 2]])
    np.testing.assert_array_equal(coarse.labels, (tr.labels > 0).astype(int))
    with pytest.raises(ValueError, match="chains"):
        sd.OnlineClassifier(5).run(m, n=3, chains="both")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    var=st.floats(1e-3, 10.0),
    scale=st.floats(1e-6, 3.0),
)
def test_ddpm_class_log_ratio_is_the_difference_of_gaussian_log_densities(seed, var, scale):
    """-(|delta|^2 - 2 r.delta)/(2 var) against log N(x'; m + delta, var I) - log N(x'; m, var I)
    evaluated directly (scipy), relative 1e-9 of the terms' size (they are O(|r|^2 / var))."""
    from scipy.stats import multivariate_normal

    from statphys_diffusion.online_posterior import ddpm_class_log_ratio

    rng = np.random.default_rng(seed)
    m, x_new = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    deltas = [scale * rng.normal(size=(3, 4)) for _ in range(2)]
    got = ddpm_class_log_ratio(x_new - m, deltas, var)
    cov = var * np.eye(4)
    for j, d in enumerate(deltas):
        ref = [
            multivariate_normal(m[i] + d[i], cov).logpdf(x_new[i]) - multivariate_normal(m[i], cov).logpdf(x_new[i])
            for i in range(3)
        ]
        size = 1.0 + np.abs(x_new - m - d).max() ** 2 / var + np.abs(x_new - m).max() ** 2 / var
        np.testing.assert_allclose(got[:, j], ref, rtol=0, atol=1e-9 * size * 4)
