"""Decision problems (Handke et al. 2025): entropies and rates of a partition of the classes against
brute-force quadrature of the relabelled problem; rates per unit log-SNR; coarse online tracks."""

import numpy as np
import pytest

import statphys_diffusion as sd

LIN = sd.DiscreteSchedule.linear()
POINTS = np.array([[-8.0], [-4.0], [6.0], [8.0]])


def _model():
    return sd.EmpiricalDistribution(POINTS, labels=[0, 1, 2, 3], schedule=LIN)


def _brute_force_entropy(groups, t):
    """H(G | X_t) on a dense grid (trapezoid, 40,001 points over +-(|mu| + 12 sigma)): p_t is the
    mixture of N(alpha mu_k, sigma^2) with weights 1/4, p_t(g | x) the sum over the group."""
    a, s = float(LIN.alpha(t)), float(LIN.sigma(t))
    x = np.linspace(-a * 8 - 12 * s, a * 8 + 12 * s, 40001)
    comp = np.exp(-((x[:, None] - a * POINTS[:, 0]) ** 2) / (2 * s * s)) / np.sqrt(2 * np.pi * s * s) / 4
    px = comp.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):  # px underflows to 0 far out, where it weighs nothing
        pg = np.stack([comp[:, g].sum(1) for g in groups], axis=1) / px[:, None]
        h = -np.where(pg > 0, pg * np.log(pg), 0.0).sum(1)
    return np.trapezoid(px * h, x)


@pytest.mark.parametrize("groups", [[[0, 1], [2, 3]], [[2], [3], [0, 1]]])
def test_partition_entropy_matches_brute_force_quadrature(groups):
    """Adaptive quadrature against a dense trapezoid of the relabelled problem: 1e-6 absolute."""
    times = np.array([20.0, 100.0, 300.0, 600.0])
    est = sd.conditional_entropy(_model(), times, groups=groups)
    ref = [_brute_force_entropy(groups, t) for t in times]
    np.testing.assert_allclose(est.value, ref, atol=1e-6)


def test_coarse_decision_peaks_earlier_in_generation_than_the_fine_one():
    """Peak of dH/dt on a log grid of 60 times, against the finite-difference derivative of the
    brute-force entropy on the same grid (agree within one grid step); the sign decision
    {-8, -4} | {6, 8} is made at larger t than the fine one 6 | 8 within its group, whose rate is
    that of H(Y | G, X_t) = H(Y | X_t) - H(G | X_t) (chain rule)."""
    times = np.geomspace(2.0, 900.0, 60)
    coarse = sd.entropy_rate(_model(), times, groups=[[0, 1], [2, 3]], n=2000, rng=0)
    fine = sd.entropy_rate(_model(), times, groups=[[0, 1], [2], [3]], n=2000, rng=0)
    h_ref = np.array([_brute_force_entropy([[0, 1], [2, 3]], t) for t in times])
    rate_ref = np.gradient(h_ref, times)
    i_est, i_ref = int(np.argmax(coarse.rate)), int(np.argmax(rate_ref))
    assert abs(i_est - i_ref) <= 1
    within = fine.rate - coarse.rate
    assert times[int(np.argmax(coarse.rate))] > 2 * times[int(np.argmax(within))]
    # per unit log-SNR: the same profile divided by -dlog snr/dt (> 0), here by central differences
    # (h = 1e-4; at an integer knot the interpolant is only C1, so the difference errs by O(h): 1e-5)
    h = 1e-4
    speed = -(np.asarray(LIN.log_snr(times + h)) - np.asarray(LIN.log_snr(times - h))) / (2 * h)
    np.testing.assert_allclose(coarse.log_snr_speed, speed, rtol=1e-5)
    np.testing.assert_allclose(coarse.log_snr_rate, coarse.rate / speed, rtol=1e-5, atol=1e-300)
    assert coarse.log_snr_peak_time.shape == (2,)


def test_coarse_online_track_sums_class_posteriors_and_partitions_are_checked():
    track = sd.OnlineClassifier(50).run(_model(), n=20, rng=np.random.default_rng(0))
    c = track.coarse([[0, 1], [2, 3]])
    np.testing.assert_allclose(c.posterior[..., 0], track.posterior[..., :2].sum(-1), rtol=1e-12)
    np.testing.assert_allclose(c.posterior.sum(-1), 1.0, rtol=1e-12)
    assert np.all(c.entropy() <= track.entropy() + 1e-12)  # a coarse decision carries less uncertainty
    for bad, match in (
        ([[0, 1], [1, 2, 3]], "two groups"),
        ([[0, 1], [2]], "missing"),
        ([[0, 1, 2, 3]], "at least 2"),
        ([[0, 1], [2, 9]], "not a class"),
        ([[0, 1], []], "empty"),
        ("01", "sequence"),
    ):
        with pytest.raises(ValueError, match=match):
            sd.conditional_entropy(_model(), [10.0], groups=bad)
    with pytest.raises(ValueError, match="two groups"):
        track.coarse([[0, 1], [1, 2, 3]])
