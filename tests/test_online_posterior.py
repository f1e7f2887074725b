"""The online Bayes classifier along a DDPM chain converges to the exact p(y | x_t)."""

import numpy as np
import pytest

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
