"""Pham et al.'s protocols: sample classification on planted states, recovery time against the closed
form of two deltas, relative energy against log-density differences, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

import statphys_diffusion as sd

OU = sd.OrnsteinUhlenbeck()


def test_classification_of_planted_copies_recurring_states_and_isolated_samples():
    """5 near-copies of training points (memorised), 3 pairs of near-identical states far from the
    training set (spurious), 4 isolated points (generalised): labels exactly as planted."""
    rng = np.random.default_rng(0)
    d = 16
    train = 10 * rng.standard_normal((30, d))
    copies = train[:5] + 1e-3 * rng.standard_normal((5, d))
    centres = 10 * rng.standard_normal((3, d)) + 40.0
    pairs = np.repeat(centres, 2, axis=0) + 1e-3 * rng.standard_normal((6, d))
    lonely = 10 * rng.standard_normal((4, d)) - 40.0
    samples = np.vstack([copies, pairs, lonely])
    res = sd.classify_samples(samples, train, delta_m=0.1, delta_s=0.1)
    expected = ["memorized"] * 5 + ["spurious"] * 6 + ["generalized"] * 4
    assert list(res.labels) == expected
    np.testing.assert_array_equal(res.train_index[:5], np.arange(5))
    # each member of a pair points to its partner, never to itself
    np.testing.assert_array_equal(res.synth_index[5:11], [6, 5, 8, 7, 10, 9])
    assert res.fractions == {"memorized": 5 / 15, "spurious": 6 / 15, "generalized": 4 / 15}
    for c in res.fractions:
        assert res.fractions_low[c] < res.fractions[c] < res.fractions_high[c]
    # a feature map changes the space the distances live in: scaling by 100 turns copies into novelty
    scaled = sd.classify_samples(samples, train, delta_m=0.01, delta_s=0.01, features=lambda x: 100 * x)
    assert np.all(scaled.labels == "generalized")
    assert len(res.to_rows()) == 15 and "memorized 0.333" in repr(res)


def test_bad_input_for_the_classification():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="delta_m"):
        sd.classify_samples(x, x, delta_m=0.0, delta_s=1.0)
    with pytest.raises(ValueError, match="delta_s"):
        sd.classify_samples(x, x, delta_m=1.0, delta_s=-1.0)
    with pytest.raises(ValueError, match="samples"):
        sd.classify_samples(x[:1], x, delta_m=1.0, delta_s=1.0)
    with pytest.raises(ValueError, match="train"):
        sd.classify_samples(x, np.zeros((3, 5)), delta_m=1.0, delta_s=1.0)
    with pytest.raises(ValueError, match="features"):
        sd.classify_samples(x, x, delta_m=1.0, delta_s=1.0, features=lambda z: z[:1])


@settings(max_examples=20)
@given(st.integers(0, 10**6), st.floats(0.05, 2.0))
def test_relative_energy_is_the_log_density_difference_of_an_exact_mixture(seed, t):
    """Gradient theorem: -(log p_t(x2) - log p_t(x1)). 64 Gauss-Legendre nodes on a path of length
    ~|x| through a mixture whose log-density is smooth on the scale sqrt(S) >= 0.3: 1e-7 relative
    (the quadrature error is far below; the tolerance covers the summation's rounding)."""
    rng = np.random.default_rng(seed)
    gm = sd.GaussianMixture.isotropic(rng.uniform(-2, 2, (3, 2)), rng.uniform(0.1, 0.5, 3), schedule=OU)
    x1, x2 = rng.uniform(-2, 2, (4, 2)), rng.uniform(-2, 2, (4, 2))
    got = sd.relative_energy(gm, x1, x2, t)
    ref = -(gm.log_prob(x2, t) - gm.log_prob(x1, t))
    np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)


def test_relative_energy_broadcasts_a_single_reference_and_refuses_bad_input():
    emp = sd.EmpiricalDistribution(np.random.default_rng(0).standard_normal((20, 3)), schedule=OU)
    x1 = np.random.default_rng(1).standard_normal((5, 3))
    ref = np.zeros((1, 3))
    e = sd.relative_energy(emp, x1, ref, 0.5)
    np.testing.assert_allclose(e, -(emp.log_prob(ref, 0.5) - emp.log_prob(x1, 0.5)), rtol=1e-7)
    with pytest.raises(ValueError, match="x1 and x2"):
        sd.relative_energy(emp, x1, np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="t="):
        sd.relative_energy(emp, x1, ref, -1.0)
    with pytest.raises(ValueError, match="n_nodes"):
        sd.relative_energy(emp, x1, ref, 0.5, n_nodes=0)


def test_recovery_time_of_two_deltas_follows_the_closed_form():
    """Deltas at +-m, exact denoiser, deterministic DDIM: the flow keeps the sign of x_t, so x_0 = m
    is recovered iff alpha m + sigma z > 0, with probability Phi(m sqrt(snr_t)). The critical time
    solves Phi(m sqrt(snr)) = p. With 4,000 trials the estimated probability is within
    3 sqrt(p (1 - p) / 4000) = 0.014 of Phi at the returned time."""
    m, p = 1.0, 0.9
    emp = sd.EmpiricalDistribution([[-m], [m]], schedule=OU)
    res = sd.recovery_time(emp, [[m]], delta=0.5 * m, p=p, n_trials=4000, steps=10, n_bisect=20, rng=0)
    t_star = float(OU.t_of_snr((norm.ppf(p) / m) ** 2))
    assert res.bracketed[0]
    assert abs(norm.cdf(m * np.sqrt(float(OU.snr(res.t[0])))) - p) < 0.014
    assert res.t[0] == pytest.approx(t_star, rel=0.05)
    prob = sd.recovery_probability(emp, [[m]], t_star, delta=0.5 * m, n_trials=4000, steps=10, rng=1)
    assert abs(prob[0] - p) < 0.014
    # a point that is recovered at every time in the bracket and one never recovered
    far = sd.EmpiricalDistribution([[-8.0], [8.0]], schedule=OU)
    r2 = sd.recovery_time(far, [[8.0]], delta=1.0, n_trials=50, t_range=(0.01, 0.05), rng=0)
    assert r2.t[0] == 0.05 and not r2.bracketed[0]


def test_bad_input_for_the_recovery_time():
    emp = sd.EmpiricalDistribution([[-1.0], [1.0]], schedule=OU)
    with pytest.raises(ValueError, match="delta"):
        sd.recovery_time(emp, [[1.0]], delta=0.0)
    with pytest.raises(ValueError, match="x0"):
        sd.recovery_time(emp, [[1.0, 2.0]], delta=1.0)
    with pytest.raises(ValueError, match="t_range"):
        sd.recovery_time(emp, [[1.0]], delta=1.0, t_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="t_range"):
        sd.recovery_time(emp, [[1.0]], delta=1.0, t_range=(-1.0, 0.1))
    with pytest.raises(ValueError, match="p must"):
        sd.recovery_time(emp, [[1.0]], delta=1.0, p=1.5)
    with pytest.raises(ValueError, match="n_trials"):
        sd.recovery_probability(emp, [[1.0]], 0.5, delta=1.0, n_trials=0)
