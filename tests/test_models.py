"""Property tests of the exact models against independent references.

References: central finite differences (score, Hessian), dense Gaussian
conditioning with Cholesky factors (denoiser, posteriors, log density),
explicit limits. Tolerances are stated where they are set.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

import statphys_diffusion as sd
from statphys_diffusion import testing as sdt
from statphys_diffusion._kernels import streaming


def _points(model, t, rng, m=6):
    """Points at the scale of p_t: exact draws plus a few far-away ones."""
    x = model.sample(m, t, rng=rng).x
    x[0] *= 3.0
    return x


@given(sdt.gaussian_mixtures(degenerate=True), st.data())
def test_score_is_gradient_of_log_prob(gm, data):
    t = data.draw(sdt.times(gm.schedule))
    if gm.singular and t <= gm.schedule.t_min:
        return
    x = _points(gm, t, np.random.default_rng(data.draw(st.integers(0, 1000))))
    sdt.check_score(gm, x, t)


@given(sdt.gaussian_mixtures(degenerate=True), st.data())
def test_hessian_is_jacobian_of_score(gm, data):
    t = data.draw(sdt.times(gm.schedule, log_snr_range=(-4, 5)))
    x = _points(gm, t, np.random.default_rng(data.draw(st.integers(0, 1000))), m=3)
    sdt.check_hessian(gm, x, t)


@given(sdt.gaussian_mixtures(degenerate=True, labelled=True), st.data())
def test_posteriors_match_bayes_rule(gm, data):
    t = data.draw(sdt.times(gm.schedule))
    x = _points(gm, t, np.random.default_rng(data.draw(st.integers(0, 1000))))
    # dense Cholesky reference vs the kernels: agree to 1e-9 in probabilities and relative log density
    sdt.check_posteriors(gm, x, t, atol=1e-9)


def _conditioning_denoiser(gm, x, t):
    """E[x0 | x] = sum_k r_k (mu_k + alpha Sigma_k S_k^{-1} (x - alpha mu_k)), dense."""
    a = float(gm.schedule.alpha(t))
    s2 = float(gm.schedule.sigma2(t))
    logc = sdt.reference_component_log_densities(gm, x, t)
    r = np.exp(logc - logsumexp(logc, axis=1, keepdims=True))
    covs = gm.covariances
    out = np.zeros_like(x)
    for k in range(gm.n_components):
        S = a * a * covs[k] + s2 * np.eye(gm.dim)
        post = gm.means[k] + (a * covs[k] @ np.linalg.solve(S, (x - a * gm.means[k]).T)).T
        out += r[:, k : k + 1] * post
    return out


@given(sdt.gaussian_mixtures(degenerate=True), st.data())
def test_denoiser_satisfies_tweedie_and_conditioning(gm, data):
    t = data.draw(sdt.times(gm.schedule, log_snr_range=(-4, 6)))
    x = _points(gm, t, np.random.default_rng(data.draw(st.integers(0, 1000))))
    den = gm.denoise(x, t)
    ref = _conditioning_denoiser(gm, x, t)
    a = float(gm.schedule.alpha(t))
    # both sides are O(|x|/alpha + |mu|); cancellation in x + sigma^2 s costs ~1e-15 * that
    scale = np.abs(x).max() / a + np.abs(gm.means).max() + 1.0
    np.testing.assert_allclose(den, ref, atol=1e-9 * scale)
    sdt.check_tweedie(gm, x, t)


@given(sdt.gaussian_mixtures(dim=st.integers(9, 14), covariance_type=st.just("isotropic"), degenerate=True), st.data())
def test_streaming_path_matches_generic_path(gm, data):
    """d > 8 isotropic uses the streaming kernel; the same model as 'diagonal' uses the generic loop."""
    t = data.draw(sdt.times(gm.schedule))
    if gm.singular and t <= gm.schedule.t_min:
        return
    x = _points(gm, t, np.random.default_rng(0))
    diag = sd.GaussianMixture.diagonal(
        gm.means, np.repeat(gm._cov.var[:, None], gm.dim, axis=1), gm.weights, schedule=gm.schedule
    )
    np.testing.assert_allclose(gm.log_prob(x, t), diag.log_prob(x, t), rtol=1e-11, atol=1e-9)
    s1, s2 = gm.score(x, t), diag.score(x, t)
    np.testing.assert_allclose(s1, s2, rtol=1e-9, atol=1e-9 * np.abs(s2).max())
    d1, d2 = gm.denoise(x, t), diag.denoise(x, t)
    np.testing.assert_allclose(d1, d2, rtol=1e-8, atol=1e-8 * (np.abs(d2).max() + 1))


@given(st.integers(9, 30), st.integers(1, 5), st.integers(0, 2**31), st.sampled_from(["lowrank", "full"]))
def test_lowrank_and_full_paths_agree(d, m, seed, kind):
    rng = np.random.default_rng(seed)
    k = 3
    m = min(m, d)
    basis = np.stack([np.linalg.qr(rng.standard_normal((d, m)))[0] for _ in range(k)])
    lam = rng.uniform(0.2, 3.0, (k, m))
    nv = rng.uniform(0.05, 0.5, k)
    means = rng.normal(size=(k, d))
    low = sd.GaussianMixture.low_rank(means, basis, lam, nv)
    full = sd.GaussianMixture.full(means, low.covariances)
    t = 0.4
    x = low.sample(5, t, rng=rng).x
    np.testing.assert_allclose(low.log_prob(x, t), full.log_prob(x, t), rtol=1e-11)
    np.testing.assert_allclose(low.score(x, t), full.score(x, t), rtol=1e-9, atol=1e-10)
    v = rng.normal(size=x.shape)
    np.testing.assert_allclose(low.hvp(x, t, v), full.hvp(x, t, v), rtol=1e-8, atol=1e-9)


@given(sdt.gaussian_mixtures(dim=st.integers(1, 12), degenerate=True), st.data())
def test_hvp_equals_hessian_times_vector(gm, data):
    t = data.draw(sdt.times(gm.schedule, log_snr_range=(-4, 5)))
    rng = np.random.default_rng(1)
    x = _points(gm, t, rng, m=3)
    v = rng.normal(size=x.shape)
    H = gm.hessian(x, t)
    ref = np.einsum("mij,mj->mi", H, v)
    np.testing.assert_allclose(gm.hvp(x, t, v), ref, rtol=1e-8, atol=1e-8 * (np.abs(H).max() + 1))


@given(st.integers(1, 200), st.integers(1, 300), st.integers(0, 2**31))
def test_streaming_chunks_agree_with_dense_reference(chunk, n_comp, seed):
    """The chunked online softmax equals the dense (M, K) computation for any chunk size."""
    rng = np.random.default_rng(seed)
    m, d = 7, 16
    mu = rng.normal(size=(n_comp, d))
    var = rng.uniform(0, 0.5, n_comp) * rng.integers(0, 2, n_comp)
    logw = np.log(rng.dirichlet(np.ones(n_comp)))
    labels = rng.integers(0, 4, n_comp)
    x = rng.normal(size=(m, d)) * 1.5
    a, s2 = 0.6, 0.64
    lse, score, den, cls = streaming.streaming_iso(
        x, mu, (mu**2).sum(1), logw, var, a, s2, labels, 4, True, True, chunk=chunk
    )
    logits = streaming.dense_iso_logits(x, mu, (mu**2).sum(1), logw, var, a, s2)
    ref_lse = logsumexp(logits, axis=1)
    r = np.exp(logits - ref_lse[:, None])
    c = a * a * var + s2
    ref_score = np.einsum("mk,mkd->md", r, (a * mu[None] - x[:, None]) / c[None, :, None])
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(score, ref_score, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(den, (x + s2 * ref_score) / a, rtol=1e-10, atol=1e-11)
    ref_cls = np.stack([r[:, labels == j].sum(1) for j in range(4)], axis=1)
    np.testing.assert_allclose(cls, ref_cls, atol=1e-12)


@pytest.mark.parametrize("d", [2, 20])
def test_float32_agrees_with_float64(d):
    """float32 in gives float32 out, within 1e-4 relative of float64 at moderate t.

    float32 has 6e-8 unit roundoff; scores are sums of O(d) products and the
    streaming path computes |x|^2 - 2 x.mu + |mu|^2 in float32, so errors of
    ~1e-5 relative are expected at sigma^2 ~ 0.3; 1e-4 leaves margin.
    """
    rng = np.random.default_rng(0)
    emp = sd.EmpiricalDistribution(rng.normal(size=(500, d)), labels=rng.integers(0, 5, 500))
    t = 0.2
    x = emp.sample(50, t, rng=rng).x
    for fn in (emp.score, emp.denoise):
        y64 = fn(x, t)
        y32 = fn(x.astype(np.float32), t)
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4 * np.abs(y64).max())
    np.testing.assert_allclose(emp.class_posterior(x.astype(np.float32), t), emp.class_posterior(x, t), atol=1e-4)


def test_limits_small_and_large_t():
    rng = np.random.default_rng(3)
    d = 3
    means = rng.normal(size=(4, d))
    covs = np.stack([np.eye(d) * 0.5 + 0.1 * np.outer(v, v) for v in rng.normal(size=(4, d))])
    gm = sd.GaussianMixture.full(means, covs)
    x = rng.normal(size=(10, d))
    # t -> 0: p_t -> p_0 exactly (OU is continuous at 0, non-singular model)
    logc = sdt.reference_component_log_densities(gm, x, 0.0)
    np.testing.assert_allclose(gm.log_prob(x, 0.0), logsumexp(logc, axis=1), rtol=1e-12)
    np.testing.assert_allclose(gm.log_prob(x, 1e-6), gm.log_prob(x, 0.0), rtol=1e-5)
    # t -> infinity: p_t -> N(0, I), score -> -x; the error is O(alpha_t) = e^{-20}
    np.testing.assert_allclose(gm.score(x, 20.0), -x, atol=1e-7)
    # denoiser at t -> infinity returns the data mean
    emp = sd.EmpiricalDistribution(rng.normal(size=(50, 12)))
    y = rng.normal(size=(5, 12))
    np.testing.assert_allclose(emp.denoise(y, 15.0), np.tile(emp.points.mean(0), (5, 1)), atol=1e-6)
    # and at small t it snaps to the nearest training point
    near = emp.points[[3, 7]] + 1e-3 * rng.normal(size=(2, 12))
    np.testing.assert_allclose(emp.denoise(near, 1e-4), emp.points[[3, 7]], atol=1e-8)


@pytest.mark.parametrize("t", [1e-6, 1e-3, 1.0, 20.0])
@pytest.mark.parametrize("d", [2, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_nan_or_inf_at_extreme_times_and_far_points(t, d, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, d))
    x *= 1e3 / np.linalg.norm(x, axis=1, keepdims=True)
    x[0] = 0.0
    models = [
        sd.EmpiricalDistribution(rng.normal(size=(64, d)), labels=rng.integers(0, 3, 64)),
        sd.GaussianMixture.diagonal(rng.normal(size=(3, d)), rng.uniform(0.1, 1, (3, d)), labels=[0, 1, 1]),
        sd.LinearManifold.random(d, 1, [2.0], rng=rng),
    ]
    for model in models:
        xx = x.astype(dtype)
        outs = [model.log_prob(xx, t), model.score(xx, t), model.denoise(xx, t), model.component_posterior(xx, t)]
        if model.labels is not None:
            outs.append(model.class_posterior(xx, t))
        for out in outs:
            assert np.all(np.isfinite(out)), (type(model).__name__, t, d, dtype)


def test_linear_manifold_denoiser_jacobian_closed_form():
    rng = np.random.default_rng(5)
    lm = sd.LinearManifold.random(10, 3, [0.5, 2.0, 8.0], rng=rng)
    t = 0.7
    x = lm.sample(4, t, rng=rng).x
    h = 1e-5
    J = np.stack([(lm.denoise(x + h * e, t) - lm.denoise(x - h * e, t)) / (2 * h) for e in np.eye(10)], axis=2)
    U = lm.basis
    proj = np.einsum("di,mde,ej->mij", U, J, U)
    np.testing.assert_allclose(
        np.diagonal(proj, axis1=1, axis2=2), np.tile(lm.denoiser_jacobian_eigenvalues(t), (4, 1)), atol=1e-8
    )
    normal = np.eye(10) - U @ U.T
    np.testing.assert_allclose(np.einsum("de,mef->mdf", normal, J), 0, atol=1e-8)


def test_sample_is_exact_in_distribution():
    """Moments of exact draws of x_t match alpha m and alpha^2 C + sigma^2 I (5 standard errors)."""
    rng = np.random.default_rng(11)
    gm = sd.GaussianMixture.diagonal([[0.0, 1.0], [2.0, -1.0]], [[0.3, 0.2], [0.5, 0.1]], [0.25, 0.75])
    t = 0.5
    n = 200_000
    x = gm.sample(n, t, rng=rng).x
    a, s2 = float(gm.schedule.alpha(t)), float(gm.schedule.sigma2(t))
    mean = a * gm.mean()
    cov = a * a * gm.covariance() + s2 * np.eye(2)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=5 * np.sqrt(2 / n) * np.diag(cov).max())


@pytest.mark.parametrize("d", [1, 3, 12])
def test_zero_weight_component_is_ignored_without_nan(d):
    """A component with weight 0 has logit -inf; the guarded log-sum-exp must drop it, not produce NaN."""
    rng = np.random.default_rng(2)
    means = rng.normal(size=(3, d))
    full = sd.GaussianMixture.isotropic(means, [0.2, 0.3, 0.4], [0.0, 0.5, 0.5], labels=[0, 1, 1])
    sub = sd.GaussianMixture.isotropic(means[1:], [0.3, 0.4], [0.5, 0.5])
    x = rng.normal(size=(5, d))
    t = 0.3
    np.testing.assert_allclose(full.log_prob(x, t), sub.log_prob(x, t), rtol=1e-12)
    np.testing.assert_allclose(full.score(x, t), sub.score(x, t), rtol=1e-10, atol=1e-12)
    r = full.component_posterior(x, t)
    assert np.all(r[:, 0] == 0) and np.all(np.isfinite(r))
    np.testing.assert_allclose(full.class_posterior(x, t)[:, 1], 1.0, rtol=1e-12)


def test_mixture_of_linear_manifolds_matches_dense_reference():
    rng = np.random.default_rng(4)
    a = sd.LinearManifold.random(6, 1, [2.0], rng=rng)
    b = sd.LinearManifold(np.linalg.qr(rng.normal(size=(6, 3)))[0], [0.5, 1.0, 3.0], offset=np.ones(6))
    mix = sd.LinearManifold.mixture([a, b], [0.4, 0.6], labels=[0, 1])
    assert mix.singular and mix.n_components == 2
    np.testing.assert_allclose(mix.covariances[0], 2.0 * np.outer(a.basis[:, 0], a.basis[:, 0]), atol=1e-12)
    x = mix.sample(5, 0.4, rng=rng).x
    sdt.check_posteriors(mix, x, 0.4, atol=1e-10)
    sdt.check_score(mix, x, 0.4)
    with pytest.raises(ValueError, match="ambient"):
        sd.LinearManifold.mixture([a, sd.LinearManifold.random(5, 1, [1.0], rng=rng)])


@pytest.mark.parametrize("kind", ["iso", "diag", "lowrank"])
def test_hessian_operator_matches_dense_hessian(kind):
    rng = np.random.default_rng(8)
    d = 12
    pts = rng.normal(size=(40, d))
    if kind == "iso":
        model = sd.EmpiricalDistribution(pts)
    elif kind == "diag":
        model = sd.GaussianMixture.diagonal(pts[:4], rng.uniform(0.1, 1, (4, d)))
    else:
        basis = np.stack([np.linalg.qr(rng.normal(size=(d, 3)))[0] for _ in range(4)])
        model = sd.GaussianMixture.low_rank(pts[:4], basis, rng.uniform(0.5, 2, (4, 3)), 0.1)
    x = model.sample(1, 0.3, rng=rng).x[0]
    H = model.hessian(x[None], 0.3)[0]
    op = model.hessian_operator(x, 0.3)
    np.testing.assert_allclose(op @ np.eye(d), H, rtol=1e-9, atol=1e-9 * np.abs(H).max())


@pytest.mark.parametrize("kind", ["isotropic", "full", "empirical"])
def test_class_conditional_denoisers_average_to_the_unconditional_one(kind):
    # law of total expectation: D(x) = sum_c p(c | x) D(x, c); and the score likewise
    # through p(x) = sum_c pi_c p(x | c): s(x) = sum_c p(c | x) s(x | c)
    rng = np.random.default_rng(4)
    if kind == "isotropic":
        m = sd.GaussianMixture.isotropic(rng.standard_normal((5, 3)), rng.uniform(0.1, 1, 5), labels=[0, 1, 1, 2, 2])
    elif kind == "full":
        a = rng.standard_normal((4, 2, 2))
        m = sd.GaussianMixture.full(
            rng.standard_normal((4, 2)), a @ a.transpose(0, 2, 1) + 0.1 * np.eye(2), labels=[3, 3, 7, 9]
        )
    else:
        m = sd.EmpiricalDistribution(rng.standard_normal((50, 12)), labels=np.arange(50) % 4)
    x = rng.standard_normal((6, m.dim))
    post = m.class_posterior(x, 0.4)
    for method in ("denoise", "score"):
        per_class = np.stack([getattr(m, method)(x, 0.4, y=c) for c in m.classes], axis=1)
        np.testing.assert_allclose(np.einsum("mc,mcd->md", post, per_class), getattr(m, method)(x, 0.4), atol=1e-10)
    rows = m.classes[np.arange(6) % len(m.classes)]
    one_by_one = np.stack([m.denoise(x[i : i + 1], 0.4, y=rows[i])[0] for i in range(6)])
    np.testing.assert_allclose(m.denoise(x, 0.4, y=rows), one_by_one)
    with pytest.raises(ValueError, match="not a class"):
        m.denoise(x, 0.4, y=123)
    with pytest.raises(ValueError, match="one class per row"):
        m.denoise(x, 0.4, y=rows[:3])


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full", "lowrank"])
def test_covariance_traces_equal_the_trace_of_the_dense_matrices(kind):
    from statphys_diffusion._covariance import CovarianceSet

    rng = np.random.default_rng(7)
    k, d = 3, 5
    if kind == "isotropic":
        cov = rng.uniform(0.1, 2.0, k)
    elif kind == "diagonal":
        cov = rng.uniform(0.1, 2.0, (k, d))
    elif kind == "full":
        a = rng.normal(size=(k, d, d))
        cov = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    else:
        u = np.stack([np.linalg.qr(rng.normal(size=(d, 2)))[0] for _ in range(k)])
        cov = (u, rng.uniform(0.1, 2.0, (k, 2)), rng.uniform(0.0, 0.5, k))
    cs = CovarianceSet.build(kind, cov, k, d)
    np.testing.assert_allclose(cs.traces(), np.trace(cs.dense(), axis1=1, axis2=2), rtol=1e-12)
