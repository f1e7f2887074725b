"""The black-box dimension estimator on exact models: m on an m-dim linear manifold at small t,
per-block loss times at alpha^2 lambda = sigma^2, the rules, and bad input."""

import numpy as np
import pytest

import statphys_diffusion as sd

OU = sd.OrnsteinUhlenbeck()


def _manifold(d=12, lam=(4.0, 4.0, 0.25, 0.25), seed=0):
    u, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, len(lam))))
    return sd.LinearManifold(u, np.asarray(lam), schedule=OU)


@pytest.mark.parametrize("rule", ["largest_gap", "cliff", "level"])
def test_dimension_of_a_linear_manifold_at_small_t(rule):
    lm = _manifold()
    x0 = lm.sample(1, 0.0, rng=np.random.default_rng(1)).x
    res = sd.manifold_dimension(lm, x0, [1e-4, 1e-3], rule=rule, rng=0)
    assert list(res.dimension) == [4, 4]


def test_normalised_spectrum_and_block_loss_times_follow_the_closed_form():
    """The score of a linear manifold is linear, so the symmetrised probe matrix is exactly
    sigma^2 H Q: normalised tangent values sigma^2 / (alpha^2 lambda + sigma^2) (1e-10), and each
    block is lost where alpha^2 lambda = sigma^2, t = t_of_snr(1 / lambda) (log-t interpolation on
    a 80-point grid: 2%)."""
    lam = np.array([4.0, 4.0, 0.25, 0.25])
    lm = _manifold(lam=lam)
    x0 = lm.sample(1, 0.0, rng=np.random.default_rng(2)).x
    times = np.geomspace(1e-3, 3.0, 80)
    res = sd.manifold_dimension(lm, x0, times, rng=3)
    t = 0.4
    one = sd.manifold_dimension(lm, x0, t, rng=3).singular_values[0]
    a2, s2 = float(OU.alpha(t)) ** 2, float(OU.sigma2(t))
    np.testing.assert_allclose(np.sort(one)[:4], np.sort(s2 / (a2 * lam + s2)), rtol=1e-10)
    np.testing.assert_allclose(one[:8], 1.0, rtol=1e-10)
    loss = res.loss_times()
    expected = np.sort(np.asarray(OU.t_of_snr(1.0 / lam)))
    np.testing.assert_allclose(np.sort(loss[:4]), expected, rtol=0.02)
    assert np.all(np.isnan(loss[4:]))  # the normal directions are never tangent
    assert res.dimension[0] == 4 and res.dimension[-1] < 4
    assert len(res.to_rows()) == 80 * 12


def test_the_plain_estimator_carries_the_mean_score_term():
    """Without antithetic probes every row carries sigma s(alpha x0): away from the manifold's centre
    it adds a rank-one direction, which the symmetrised estimator cancels."""
    lm = _manifold()
    x0 = lm.sample(1, 0.0, rng=np.random.default_rng(4)).x + 3.0 * np.ones((1, 12)) / np.sqrt(12)
    sym = sd.manifold_dimension(lm, x0, 0.05, rng=5).singular_values[0]
    plain = sd.manifold_dimension(lm, x0, 0.05, symmetrize=False, rng=5).singular_values[0]
    assert np.abs(sym - plain).max() > 1e-2


def test_bad_input_is_refused_by_name():
    lm = _manifold()
    x0 = np.zeros((1, 12))
    with pytest.raises(ValueError, match="n_probes"):
        sd.manifold_dimension(lm, x0, 0.1, n_probes=13)
    with pytest.raises(ValueError, match="times"):
        sd.manifold_dimension(lm, x0, 0.0)
    with pytest.raises(ValueError, match="x0"):
        sd.manifold_dimension(lm, np.zeros((2, 12)), 0.1)
    with pytest.raises(ValueError, match="rule"):
        sd.manifold_dimension(lm, x0, 0.1, rule="elbow")
    with pytest.raises(ValueError, match="level"):
        sd.manifold_dimension(lm, x0, 0.1, level=1.5)
