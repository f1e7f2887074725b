"""Predictions for a user's own data array: the streamed covariance spectrum, both speciation-time
forms, collapse and geometric predictions from data, and Biroli et al.'s excess-entropy criterion."""

import numpy as np
import pytest
from scipy.special import logsumexp

import statphys_diffusion as sd

OU = sd.OrnsteinUhlenbeck()


def _data(n=500, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.2, 0.1]) + 1.5


def test_covariance_spectrum_streams_to_the_dense_answer():
    """Chunks of 7 rows, float32 input accumulated in float64: the eigenvalues of np.cov to 1e-10."""
    x = _data()
    ref = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    spec = sd.covariance_spectrum(x, chunk=7)
    np.testing.assert_allclose(spec.eigenvalues, ref, rtol=1e-10)
    np.testing.assert_allclose(spec.mean, x.mean(0), rtol=1e-12)
    x32 = x.astype(np.float32)
    ref32 = np.sort(np.linalg.eigvalsh(np.cov(x32.astype(np.float64).T)))[::-1]
    np.testing.assert_allclose(sd.covariance_spectrum(x32, chunk=64).eigenvalues, ref32, rtol=1e-10)
    assert spec.top == spec.eigenvalues[0] and len(spec.to_rows()) == 6
    for bad in (np.zeros(5), np.zeros((1, 3)), np.array([[1.0, np.nan], [0.0, 1.0]])):
        with pytest.raises(ValueError, match="data"):
            sd.covariance_spectrum(bad)


def test_both_speciation_forms_against_their_closed_forms():
    """exact: alpha^2 Lambda = sigma^2 (OU: 1/2 log(1 + Lambda)); paper: 1/2 log Lambda, whose
    CIFAR-10 value in Biroli et al.'s Table 1 is 1.4083 for Lambda = 16.72."""
    assert sd.speciation_time(top_eigenvalue=16.72, form="paper") == pytest.approx(1.4083, abs=5e-5)
    assert sd.speciation_time(top_eigenvalue=16.72) == pytest.approx(0.5 * np.log1p(16.72), rel=1e-10)
    lin = sd.DiscreteSchedule.linear()
    for lam in (3.0, 16.72):
        t = sd.speciation_time(top_eigenvalue=lam, schedule=lin)
        assert float(lin.alpha(t)) ** 2 * lam == pytest.approx(float(lin.sigma2(t)), rel=1e-8)
        tp = sd.speciation_time(top_eigenvalue=lam, schedule=lin, form="paper")
        assert float(lin.snr(tp)) == pytest.approx(1.0 / (lam - 1.0), rel=1e-8)
    # at Lambda = 3 the two forms are tens of DDPM steps apart
    gap = sd.speciation_time(top_eigenvalue=3.0, schedule=lin) - sd.speciation_time(
        top_eigenvalue=3.0, schedule=lin, form="paper"
    )
    assert gap > 20
    with pytest.raises(ValueError, match="Lambda > 1"):
        sd.speciation_time(top_eigenvalue=0.5, form="paper")
    with pytest.raises(ValueError, match="form"):
        sd.speciation_time(top_eigenvalue=2.0, form="other")


def test_predictions_take_a_data_array():
    x = _data()
    spec = sd.covariance_spectrum(x)
    assert sd.speciation_time(data=x) == pytest.approx(0.5 * np.log1p(spec.top), rel=1e-12)
    # a plain array where a model was expected gets a named error, not an AttributeError
    with pytest.raises(ValueError, match="data=array"):
        sd.speciation_time(x)
    assert sd.collapse_time(data=x) == pytest.approx(sd.collapse_time(x.shape[0], spec.eigenvalues), rel=1e-12)
    g = sd.geometric_memorization(data=x, times=[0.0, 0.5])
    ref = sd.geometric_memorization(x.shape[0], spec.eigenvalues, [0.0, 0.5])
    np.testing.assert_allclose(g.retained, ref.retained, rtol=1e-12)
    with pytest.raises(ValueError, match="either data"):
        sd.collapse_time(10, spec.eigenvalues, data=x)
    with pytest.raises(ValueError, match="n_points and eigenvalues"):
        sd.collapse_time(10)


def _peer_excess_entropy(points, x, t):
    """Biroli et al.'s entropy criterion written from their Experiment_collapse.py (OU: alpha = e^-t,
    Delta = 1 - e^-2t): log P / N + mean(log P_t(x)) / N + 1/2 (1 + log(2 pi Delta)) per draw."""
    p, n = points.shape
    delta = 1 - np.exp(-2 * t)
    dist = ((x[:, None, :] - np.exp(-t) * points[None]) ** 2).sum(-1)
    logp = logsumexp(-dist / (2 * delta), axis=1) - np.log(p) - n / 2 * np.log(2 * np.pi * delta)
    return np.log(p) / n + logp.mean() / n + 0.5 * (1 + np.log(2 * np.pi * delta))


def test_excess_entropy_is_the_peers_criterion_and_has_its_limits():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((200, 10))
    emp = sd.EmpiricalDistribution(pts, schedule=OU)
    times = np.array([0.01, 0.3, 1.0, 6.0])
    res = sd.excess_entropy(emp, times, n=400, rng=1)
    # the same draws as excess_entropy (its documented order): origins, then one noise per draw
    r = np.random.default_rng(1)
    y = pts[r.choice(200, size=400, p=emp.weights)]
    eps = r.standard_normal(y.shape)
    for j, t in enumerate(times):
        x = np.exp(-t) * y + np.sqrt(1 - np.exp(-2 * t)) * eps
        assert res.value[j] == pytest.approx(_peer_excess_entropy(pts, x, t), rel=1e-9, abs=1e-12)
    # collapsed at small t (f^e = 0 within 3 s.e.), log N / d at large t (within 5%)
    assert abs(res.value[0]) < 3 * res.value_stderr[0] + 1e-12
    assert res.value[-1] == pytest.approx(np.log(200) / 10, rel=0.05)
    assert res.collapse_time() >= 0.01 and len(res.to_rows()) == 4
    with pytest.raises(ValueError, match="n must"):
        sd.excess_entropy(emp, times, n=1)
    with pytest.raises(ValueError, match="EmpiricalDistribution"):
        sd.excess_entropy(OU, times)
