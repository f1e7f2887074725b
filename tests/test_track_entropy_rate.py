"""track_entropy_rate / OnlineTrack.restrict: the network-side entropy rate.

References: (1) a hand-built track whose posterior is a known function of t, so its entropy and
its derivative are closed forms; (2) an exact 1-D labelled mixture, where joint chains tracked
online must reproduce the exact H(Y | X_t) of quadrature (sd.conditional_entropy) and its peak
(sd.entropy_rate, quadrature), up to Monte Carlo and step-size error.
"""

from __future__ import annotations

import numpy as np
import pytest

import statphys_diffusion as sd

OU = sd.OrnsteinUhlenbeck()


def _synthetic_track(n_chains=6, n_steps=400, centre=1.0, width=0.15, labels=None):
    """Two classes, q(t) = 1 / (1 + exp(-(t - centre) / width)) / 2 + 1/2 ... chain-independent."""
    times = np.linspace(3.0, 0.0, n_steps + 1)  # decreasing, ends at t_min = 0
    q = 0.5 + 0.5 / (1.0 + np.exp((times - centre) / width))  # 1/2 at large t, -> 1 at small t
    p = np.stack([q, 1 - q], axis=-1)  # (S + 1, 2)
    lp = np.log(np.broadcast_to(p[:, None, :], (times.size, n_chains, 2)))
    return sd.OnlineTrack(
        times=times,
        x=np.zeros((n_chains, 1)),
        classes=np.array([0, 1]),
        log_posterior=lp.copy(),
        trajectory=None,
        labels=labels,
    )


def test_synthetic_track_entropy_and_rate_match_closed_forms():
    tr = _synthetic_track()
    er = tr.entropy_rate(OU, n_bootstrap=20, rng=0)
    assert er.method == "online" and er.n == 6
    t = er.times
    assert np.all(np.diff(t) > 0) and t[0] > 0  # t_min dropped, increasing
    q = 0.5 + 0.5 / (1.0 + np.exp((t - 1.0) / 0.15))
    h = -(q * np.log(q) + (1 - q) * np.log(1 - q))
    np.testing.assert_allclose(er.entropy, h, rtol=1e-12, atol=1e-14)
    dq = -0.5 / 0.15 * np.exp((t - 1.0) / 0.15) / (1.0 + np.exp((t - 1.0) / 0.15)) ** 2
    dh = -dq * (np.log(q) - np.log(1 - q))
    # numpy.gradient: second order inside, first order at the two ends; grid step 3/400
    np.testing.assert_allclose(er.rate[1:-1], dh[1:-1], atol=2e-3 * np.abs(dh).max())
    # every chain is identical: the rate's standard error is 0 and the bootstrap peak error too
    np.testing.assert_allclose(er.rate_stderr, 0.0, atol=1e-12)
    assert er.peak_time_stderr[0] == pytest.approx(0.0, abs=1e-12)
    # dh/dt peaks where q'(t) log(q / (1-q)) is largest: find it on a fine grid
    fine = np.linspace(0.01, 3, 300001)
    qf = 0.5 + 0.5 / (1.0 + np.exp((fine - 1.0) / 0.15))
    dqf = -0.5 / 0.15 * np.exp((fine - 1.0) / 0.15) / (1.0 + np.exp((fine - 1.0) / 0.15)) ** 2
    t_star = fine[np.argmax(-dqf * np.log(qf / (1 - qf)))]
    assert er.peak_time[0] == pytest.approx(t_star, abs=0.01)
    # the final decision is class 0 for every chain (null chains: classes = decisions)
    np.testing.assert_array_equal(er.class_counts, [6, 0])
    assert np.all(np.isnan(er.class_rate[1]))
    # per unit log-SNR: rate / (-d log snr/dt); OU: log snr = log(e^-2t / (1 - e^-2t))
    speed = 2.0 / (1.0 - np.exp(-2 * t))
    np.testing.assert_allclose(er.log_snr_speed, speed, rtol=1e-10)
    np.testing.assert_allclose(er.class_log_snr_rate[0], er.class_rate[0] / speed, rtol=1e-12)


def test_coarse_thinning_and_labels():
    tr = _synthetic_track(n_chains=4, labels=np.array([1, 1, 0, 1]))
    er = sd.track_entropy_rate(tr, OU, coarse=10, n_bootstrap=10, rng=1)
    kept = np.sort(tr.times[tr.times > 0])[::10]
    np.testing.assert_allclose(er.times, kept)
    np.testing.assert_array_equal(er.class_counts, [1, 3])  # by generating label
    np.testing.assert_array_equal(er.generated_counts, [4, 0])  # by final decision
    with pytest.raises(ValueError, match="coarse"):
        sd.track_entropy_rate(tr, OU, coarse=0)
    with pytest.raises(ValueError, match="at least 3"):
        sd.track_entropy_rate(tr, OU, coarse=1000)
    with pytest.raises(ValueError, match="schedule"):
        sd.track_entropy_rate(tr, "ou")


def test_restrict_renormalises_and_keeps_the_subset_chains():
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(4), size=(5, 6)))  # (S + 1, M, C)
    tr = sd.OnlineTrack(
        times=np.linspace(1, 0, 5),
        x=np.arange(6.0)[:, None],
        classes=np.array([0, 1, 6, 7]),
        log_posterior=lp,
        trajectory=None,
        labels=np.array([0, 6, 1, 7, 0, 6]),
    )
    sub = tr.restrict([0, 1])
    np.testing.assert_array_equal(sub.labels, [0, 1, 0])
    np.testing.assert_array_equal(sub.x[:, 0], [0, 2, 4])
    p = np.exp(lp[:, [0, 2, 4]][..., [0, 1]])
    np.testing.assert_allclose(sub.posterior, p / p.sum(-1, keepdims=True), rtol=1e-12)
    # coarse then restrict-to-complement: H(Y | X) = H(S | X) + sum_s p(s) H(Y | X, s) per chain and step
    groups = [[0, 1], [6, 7]]
    h = tr.entropy()
    hs = tr.coarse(groups).entropy()
    ps = tr.coarse(groups).posterior
    fine = []
    for g in groups:
        q = np.exp(lp[..., np.isin(tr.classes, g)])
        q = q / q.sum(-1, keepdims=True)
        fine.append(-(q * np.log(q)).sum(-1))
    np.testing.assert_allclose(h, hs + ps[..., 0] * fine[0] + ps[..., 1] * fine[1], rtol=1e-10)
    with pytest.raises(ValueError, match="not one of"):
        tr.restrict([0, 3])
    with pytest.raises(ValueError, match="repeat"):
        tr.restrict([0, 0])
    with pytest.raises(ValueError, match="at least 2"):
        tr.restrict([0])


def test_joint_chains_of_an_exact_model_reproduce_the_quadrature_entropy_rate():
    # two classes of 1-D Gaussians at +-1.5 (variance 0.1) on OU
    gm = sd.GaussianMixture.isotropic([[-1.5], [1.5]], [0.1, 0.1], labels=[0, 1], schedule=OU)
    track = sd.OnlineClassifier(200, prior="uniform").run(
        gm, n=600, chains="joint", t_start=3.0, rng=np.random.default_rng(3)
    )
    er = track.entropy_rate(OU, coarse=4, n_bootstrap=100, rng=4)
    sel = (er.times > 0.05) & (er.times < 2.5)
    exact = sd.conditional_entropy(gm, er.times[sel]).value
    # 1,200 chains: s.e. of H below 0.01 nats; 200 steps: kernel bias of the same order
    assert er.entropy_stderr[sel].max() < 0.012
    np.testing.assert_allclose(er.entropy[sel], exact, atol=0.04)
    ref = sd.entropy_rate(gm, np.geomspace(0.05, 2.5, 80), n=2000, method="quadrature", rng=0)
    step = 4 * 3.0 / 200  # the thinned grid's spacing in t
    for c in range(2):
        se = er.peak_time_stderr[c]
        assert np.isfinite(se) and 0 < se < 0.15
        assert abs(er.peak_time[c] - ref.peak_time[c]) < 4 * se + step


def test_log_snr_peak_time_stderr_of_monte_carlo_covers_the_quadrature_peak():
    gm = sd.GaussianMixture.isotropic([[-1.5], [1.5]], [0.1, 0.1], labels=[0, 1], schedule=OU)
    ts = np.geomspace(0.05, 2.5, 60)
    quad = sd.entropy_rate(gm, ts, n=500, method="quadrature", rng=0)
    np.testing.assert_array_equal(quad.log_snr_peak_time_stderr, 0.0)
    mc = sd.entropy_rate(gm, ts, n=4000, method="monte_carlo", rng=1, n_bootstrap=100)
    grid = np.max(np.diff(np.log(ts)))  # one grid step in log t
    for c in range(2):
        se = mc.log_snr_peak_time_stderr[c]
        assert np.isfinite(se) and se > 0
        gap = abs(np.log(mc.log_snr_peak_time[c] / quad.log_snr_peak_time[c]))
        assert gap < 4 * se / quad.log_snr_peak_time[c] + grid
