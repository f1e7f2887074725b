"""The locality models LS and ELS (Kamb & Ganguli 2024) against independent references: brute-force
loops over pixels and candidate patches on tiny images (hypothesis), the exact empirical model (LS
with a window that covers the image), circular-shift equivariance (ELS), and the large- and small-t
limits (the mean image, a training image).

Tolerances: the kernel and the loops compute the same softmax in float64 in different orders (GEMM
cross terms against explicit squared distances); with |q - a p|^2 / (2 s2) up to ~1e3 at small t
rounding is ~1e-13 relative to the logits' size, so 1e-9 absolute on outputs in [-1, 1] leaves a margin;
the collapsed-regime cut drops weights below e^-46 of the row's maximum (N e^-46 < 1e-18 here)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import statphys_diffusion as sd


def _brute_ls(train, x, a, s2, k):
    n, c, h, w = train.shape
    r = k // 2
    out = np.zeros_like(x)
    for m in range(x.shape[0]):
        for i in range(h):
            for j in range(w):
                logits = np.zeros(n)
                for p in range(n):
                    d2 = 0.0
                    for di in range(-r, r + 1):
                        for dj in range(-r, r + 1):
                            ii, jj = i + di, j + dj
                            if 0 <= ii < h and 0 <= jj < w:  # zero padding: outside, 0 against 0
                                d2 += float(np.sum((x[m, :, ii, jj] - a * train[p, :, ii, jj]) ** 2))
                    logits[p] = -d2 / (2 * s2)
                wts = np.exp(logits - logsumexp(logits))
                out[m, :, i, j] = wts @ train[:, :, i, j]
    return out


def _brute_els(train, x, a, s2, k):
    n, c, h, w = train.shape
    r = k // 2
    out = np.zeros_like(x)
    for m in range(x.shape[0]):
        for i in range(h):
            for j in range(w):
                rows = [(i + di) % h for di in range(-r, r + 1)]
                cols = [(j + dj) % w for dj in range(-r, r + 1)]
                q = x[m][:, rows][:, :, cols]  # the circularly padded window
                logits, values = [], []
                for p in range(n):
                    for pi in range(r, h - r):
                        for pj in range(r, w - r):
                            patch = train[p, :, pi - r : pi + r + 1, pj - r : pj + r + 1]
                            logits.append(-float(np.sum((q - a * patch) ** 2)) / (2 * s2))
                            values.append(train[p, :, pi, pj])
                logits = np.array(logits)
                wts = np.exp(logits - logsumexp(logits))
                out[m, :, i, j] = wts @ np.array(values)
    return out


@st.composite
def _problem(draw, max_side=5):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(3, max_side)), draw(st.integers(3, max_side))
    k = draw(st.sampled_from([1, 3, 5]))
    t = draw(st.floats(0.05, 2.0))
    train = rng.uniform(-1, 1, (n, c, h, w))
    x = rng.standard_normal((2, c, h, w))
    return train, x, k, t


@given(_problem())
def test_ls_equals_a_brute_force_loop(problem):
    train, x, k, t = problem
    model = sd.LocalEmpirical(train, patch_size=k)
    a, s2 = float(model.schedule.alpha(t)), float(model.schedule.sigma2(t))
    got = model.denoise(x, t).reshape(x.shape)
    np.testing.assert_allclose(got, _brute_ls(train, x, a, s2, k), atol=1e-9, rtol=0)


@given(_problem())
def test_els_equals_a_brute_force_loop(problem):
    train, x, k, t = problem
    k = min(k, *train.shape[2:]) if min(train.shape[2:]) >= k else 3
    model = sd.EquivariantLocalEmpirical(train, patch_size=k)
    a, s2 = float(model.schedule.alpha(t)), float(model.schedule.sigma2(t))
    got = model.denoise(x, t).reshape(x.shape)
    np.testing.assert_allclose(got, _brute_els(train, x, a, s2, k), atol=1e-9, rtol=0)


@pytest.mark.parametrize("schedule", [sd.OrnsteinUhlenbeck(), sd.DiscreteSchedule.linear(1000), sd.VarianceExploding()])
def test_ls_with_a_window_covering_the_image_is_the_empirical_model(schedule):
    rng = np.random.default_rng(1)
    train = rng.uniform(-1, 1, (7, 3, 4, 5))
    t = {sd.OrnsteinUhlenbeck: 0.3, sd.DiscreteSchedule: 200.0, sd.VarianceExploding: 0.8}[type(schedule)]
    emp = sd.EmpiricalDistribution(train.reshape(7, -1), schedule=schedule)
    x = emp.sample(4, t, rng=2).x
    ls = sd.LocalEmpirical(train, patch_size=9, schedule=schedule)  # 9 >= 2 max(H, W) - 1
    np.testing.assert_allclose(ls.denoise(x, t), emp.denoise(x, t), atol=1e-10)
    np.testing.assert_allclose(ls.score(x, t), emp.score(x, t), rtol=1e-8, atol=1e-8 * np.abs(emp.score(x, t)).max())


@given(st.integers(0, 2**31 - 1), st.integers(0, 5), st.integers(0, 6), st.sampled_from([1, 3, 5]))
def test_els_commutes_with_circular_shifts(seed, dy, dx, k):
    rng = np.random.default_rng(seed)
    train = rng.uniform(-1, 1, (4, 2, 6, 7))
    model = sd.EquivariantLocalEmpirical(train, patch_size=k)
    x = rng.standard_normal((2, 2, 6, 7))
    shifted = np.roll(x, (dy, dx), axis=(2, 3))
    d = model.denoise(x, 0.3).reshape(x.shape)
    np.testing.assert_allclose(
        np.roll(d, (dy, dx), axis=(2, 3)), model.denoise(shifted, 0.3).reshape(x.shape), atol=1e-12
    )


def test_large_t_gives_the_mean_and_small_t_a_training_image():
    rng = np.random.default_rng(3)
    train = rng.uniform(-1, 1, (6, 3, 5, 5))
    ls = sd.LocalEmpirical(train, patch_size=3)
    els = sd.EquivariantLocalEmpirical(train, patch_size=3)
    x = rng.standard_normal((2, 75))
    # t = 20: alpha = 2e-9, the logits differ by alpha q.p / sigma^2 ~ 1e-7: LS gives the mean image, ELS
    # the mean patch centre, to ~1e-7
    np.testing.assert_allclose(ls.denoise(x, 20.0), np.broadcast_to(train.mean(0).reshape(1, -1), (2, 75)), atol=1e-6)
    centres = train[:, :, 1:4, 1:4].transpose(1, 0, 2, 3).reshape(3, -1).mean(1)
    np.testing.assert_allclose(
        els.denoise(x, 20.0).reshape(2, 3, 25), np.broadcast_to(centres[None, :, None], (2, 3, 25)), atol=1e-6
    )
    # t = 1e-3: a slightly noised training image comes back (LS everywhere; ELS at interior pixels, whose
    # window is a candidate patch of that image)
    t = 1e-3
    a, s = float(ls.schedule.alpha(t)), float(ls.schedule.sigma(t))
    xt = a * train[2:3] + s * rng.standard_normal((1, 3, 5, 5))
    np.testing.assert_allclose(ls.denoise(xt, t).reshape(1, 3, 5, 5), train[2:3], atol=1e-12)
    d = els.denoise(xt, t).reshape(1, 3, 5, 5)
    np.testing.assert_allclose(d[..., 1:4, 1:4], train[2:3, :, 1:4, 1:4], atol=1e-12)


def test_float32_in_float32_out_and_the_score_is_tweedies():
    rng = np.random.default_rng(4)
    train = rng.uniform(-1, 1, (8, 3, 6, 6))
    x = rng.standard_normal((3, 108))
    for cls in (sd.LocalEmpirical, sd.EquivariantLocalEmpirical):
        m64 = cls(train, patch_size=3)
        m32 = cls(train.astype(np.float32), patch_size=3)
        d64, d32 = m64.denoise(x, 0.5), m32.denoise(x.astype(np.float32), 0.5)
        assert d64.dtype == np.float64 and d32.dtype == np.float32
        np.testing.assert_allclose(d32, d64, atol=2e-5)
        a, s2 = float(m64.schedule.alpha(0.5)), float(m64.schedule.sigma2(0.5))
        np.testing.assert_allclose(m64.score(x, 0.5), (a * d64 - x) / s2, rtol=1e-12, atol=1e-12)
        # images in, images or rows out: the same numbers
        np.testing.assert_array_equal(m64.denoise(x.reshape(3, 3, 6, 6), 0.5), d64)


def test_a_calibrated_patch_size_per_time_and_an_override():
    rng = np.random.default_rng(5)
    train = rng.uniform(-1, 1, (5, 1, 6, 6))
    x = rng.standard_normal((2, 36))
    model = sd.LocalEmpirical(train, patch_size=lambda t: 1 if t < 0.5 else 5)
    assert model.patch_size(0.2) == 1 and model.patch_size(1.0) == 5
    np.testing.assert_array_equal(model.denoise(x, 0.2), sd.LocalEmpirical(train, patch_size=1).denoise(x, 0.2))
    np.testing.assert_array_equal(
        model.denoise(x, 1.0, patch_size=3), sd.LocalEmpirical(train, patch_size=3).denoise(x, 1.0)
    )


def test_bad_input_is_refused_by_name():
    train = np.zeros((3, 1, 4, 4))
    with pytest.raises(ValueError, match="patch_size must be odd"):
        sd.LocalEmpirical(train, patch_size=2)
    with pytest.raises(ValueError, match="image_shape"):
        sd.LocalEmpirical(train.reshape(3, -1), patch_size=3)
    with pytest.raises(ValueError, match="exceeds the image"):
        sd.EquivariantLocalEmpirical(train, patch_size=5).denoise(np.zeros((1, 16)), 0.5)
    with pytest.raises(ValueError, match="x must have shape"):
        sd.LocalEmpirical(train, patch_size=3).denoise(np.zeros((1, 15)), 0.5)
    with pytest.raises(TypeError, match="integer pixels"):
        sd.LocalEmpirical(np.zeros((3, 1, 4, 4), dtype=np.uint8), patch_size=3)
    with pytest.raises(ValueError, match="patch_size\\(t\\) must be odd"):
        sd.LocalEmpirical(train, patch_size=lambda t: 2).denoise(np.zeros((1, 16)), 0.5)
    with pytest.raises(ValueError, match="t="):
        sd.LocalEmpirical(train, patch_size=3).denoise(np.zeros((1, 16)), -1.0)


def _brute_pspc(train, x, a, s2, s, equivariant):
    n, c, h, w = train.shape
    out = np.zeros_like(x)
    for m in range(x.shape[0]):
        acc = np.zeros((c, h, w))
        cnt = np.zeros((h, w))
        for i in range(h - s + 1):
            for j in range(w - s + 1):
                z = x[m, :, i : i + s, j : j + s]
                spots = [(i, j)] if not equivariant else [(p, q) for p in range(h - s + 1) for q in range(w - s + 1)]
                cands = [train[k, :, p : p + s, q : q + s] for k in range(n) for p, q in spots]
                logits = np.array([-float(np.sum((z - a * cand) ** 2)) / (2 * s2) for cand in cands])
                wts = np.exp(logits - logsumexp(logits))
                acc[:, i : i + s, j : j + s] += np.tensordot(wts, np.array(cands), axes=1)
                cnt[i : i + s, j : j + s] += 1
        out[m] = acc / cnt
    return out


@given(_problem(), st.integers(1, 3), st.booleans())
def test_pspc_equals_a_brute_force_loop(problem, s, equivariant):
    train, x, _, t = problem
    model = sd.PatchPosteriorAverage(train, patch_size=s, equivariant=equivariant)
    a, s2 = float(model.schedule.alpha(t)), float(model.schedule.sigma2(t))
    got = model.denoise(x, t).reshape(x.shape)
    np.testing.assert_allclose(got, _brute_pspc(train, x, a, s2, s, equivariant), atol=1e-9, rtol=0)


def test_pspc_with_one_crop_covering_the_image_is_the_empirical_model():
    rng = np.random.default_rng(6)
    train = rng.uniform(-1, 1, (9, 2, 5, 5))
    emp = sd.EmpiricalDistribution(train.reshape(9, -1))
    x = emp.sample(3, 0.2, rng=7).x
    for equivariant in (False, True):
        model = sd.PatchPosteriorAverage(train, patch_size=5, equivariant=equivariant)
        np.testing.assert_allclose(model.denoise(x, 0.2), emp.denoise(x, 0.2), atol=1e-10)
    with pytest.raises(ValueError, match="exceeds the image"):
        sd.PatchPosteriorAverage(train, patch_size=6).denoise(x, 0.2)


def test_data_driven_locality_limits_and_a_square_field_is_ls():
    """threshold = 0 sees every pixel: the empirical model; fields given as k x k squares (clipped at
    the border) are LS with zero padding; the Wiener fields grow with the noise."""
    rng = np.random.default_rng(8)
    train = rng.uniform(-1, 1, (10, 2, 5, 5))
    x = rng.standard_normal((3, 50))
    emp = sd.EmpiricalDistribution(train.reshape(10, -1))
    full = sd.DataDrivenLocalEmpirical(train, threshold=0.0)
    np.testing.assert_allclose(full.denoise(x, 0.3), emp.denoise(x, 0.3), atol=1e-10)
    ii, jj = np.divmod(np.arange(25), 5)
    square = (np.abs(ii[:, None] - ii[None]) <= 1) & (np.abs(jj[:, None] - jj[None]) <= 1)
    boxed = sd.DataDrivenLocalEmpirical(train, masks=lambda t: square)
    np.testing.assert_allclose(
        boxed.denoise(x, 0.3), sd.LocalEmpirical(train, patch_size=3).denoise(x, 0.3), atol=1e-10
    )
    # correlated data: smooth images (a random field blurred along the rows)
    smooth = np.cumsum(rng.standard_normal((200, 1, 6, 6)), axis=3) / 3
    model = sd.DataDrivenLocalEmpirical(smooth, threshold=0.3)
    sizes = [model.fields(t).sum(axis=1).mean() for t in (0.01, 0.3, 3.0)]
    assert sizes[0] <= sizes[1] <= sizes[2] and sizes[0] < sizes[2]
    # the Wiener filter is the Gaussian denoiser's gain: D_gauss(x) = mu + W (x - alpha mu)
    gauss = sd.GaussianFlow.fit(smooth.reshape(200, -1)).model(ridge=0.0)
    y = rng.standard_normal((2, 36))
    a = float(model.schedule.alpha(0.3))
    mu = smooth.reshape(200, -1).mean(0)
    np.testing.assert_allclose(gauss.denoise(y, 0.3), mu + (y - a * mu) @ model.wiener_filter(0.3).T, atol=1e-8)
    with pytest.raises(ValueError, match="threshold"):
        sd.DataDrivenLocalEmpirical(train, threshold=1.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_torch_backend_equals_the_numba_one(dtype):
    pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    train = rng.uniform(-1, 1, (15, 2, 6, 6)).astype(dtype)
    x = rng.standard_normal((3, 72)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for make in (
        lambda **kw: sd.LocalEmpirical(train, patch_size=3, **kw),
        lambda **kw: sd.EquivariantLocalEmpirical(train, patch_size=3, **kw),
        lambda **kw: sd.PatchPosteriorAverage(train, patch_size=2, **kw),
        lambda **kw: sd.DataDrivenLocalEmpirical(train, threshold=0.2, **kw),
    ):
        for t in (0.05, 0.5, 3.0):  # collapsed, mixed and dense posteriors
            ref = make().denoise(x, t)
            got = make(backend="torch", device="cpu").denoise(x, t)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    with pytest.raises(ValueError, match="backend"):
        sd.LocalEmpirical(train, patch_size=3, backend="jax")


def _chunks_of(keys, values, size):
    """The kernels' ``chunks`` callable: (keys, values) in consecutive blocks of ``size`` candidates."""

    def chunks():
        for i in range(0, keys.shape[0], size):
            yield np.ascontiguousarray(keys[i : i + size]), np.ascontiguousarray(values[i : i + size])

    return chunks


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from([1, 3, 8, 9, 20]),  # values per candidate: the fused pass (<= 8) and the GEMM pass
    st.sampled_from([1, 7, 64]),  # candidates per chunk: the running maximum crosses chunks
    st.floats(1e-4, 10.0),  # s2: collapsed (one candidate carries the weight) to dense
    st.booleans(),
)
@example(seed=1, n_values=3, per_chunk=64, s2=1e-3, single=False)  # the fused pass's collapsed branch
@example(seed=2, n_values=3, per_chunk=64, s2=5.0, single=True)  # its dense branch, float32
def test_the_streaming_patch_posterior_equals_one_softmax(seed, n_values, per_chunk, s2, single):
    from statphys_diffusion._kernels.patches import patch_posterior_mean

    dtype = np.float32 if single else np.float64
    if single:
        s2 = max(s2, 0.1)  # float32 logits carry its GEMM's rounding times a / s2 (below)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((11, 6)).astype(dtype)
    keys = rng.standard_normal((150, 6)).astype(dtype)
    values = rng.standard_normal((150, n_values)).astype(dtype)
    a = 0.8

    chunks = _chunks_of(keys, values, per_chunk)
    got = patch_posterior_mean(q, chunks, n_values, a, s2)
    # reference: float64 log-sum-exp of the exact squared distances
    q64, k64 = q.astype(np.float64), keys.astype(np.float64)
    logits = -((q64[:, None, :] - a * k64[None]) ** 2).sum(-1) / (2 * s2)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    ref = (w / w.sum(axis=1, keepdims=True)) @ values.astype(np.float64)
    assert got.dtype == dtype and got.shape == (11, n_values)
    # float64: rounding, and the weights dropped below e^-46 of the maximum (150 of them at most);
    # float32: its products q.p round to ~1e-6 of |q||p| (about 6), times a / s2 <= 8 in a logit: relative
    # weight errors ~5e-5 on values of size ~3
    tol = 1e-9 if dtype == np.float64 else 3e-4
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    # the log-normaliser the shards merge by: logsumexp of the logits without the row constant |q|^2 / (2 s2)
    _, lse = patch_posterior_mean(q, chunks, n_values, a, s2, return_lse=True)
    expect = logsumexp(logits + (q64**2).sum(-1, keepdims=True) / (2 * s2), axis=1)
    np.testing.assert_allclose(lse, expect, rtol=1e-9 if dtype == np.float64 else 1e-4, atol=1e-9)


def _reference_posterior_mean(q, keys, values, a, s2):
    """float64 softmax of the exact squared distances (the kernels' reference)."""
    q64, k64 = q.astype(np.float64), keys.astype(np.float64)
    logits = -((q64[:, None, :] - a * k64[None]) ** 2).sum(-1) / (2 * s2)
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ values.astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_row_whose_best_candidate_comes_late_is_redone_against_its_new_maximum(dtype):
    """The float32 pass takes a chunk's weights against the maximum of earlier chunks and redoes a row
    only when a logit exceeds it by more than e^40: here the first chunk holds far candidates and the
    last one a candidate at the query itself (its logit about 600 above the others'), so the redo
    runs; the float64 pass always takes the chunk's maximum. Both against the float64 softmax."""
    from statphys_diffusion._kernels.patches import patch_posterior_mean

    rng = np.random.default_rng(5)
    a, s2 = 0.9, 0.05
    q = rng.standard_normal((6, 8)).astype(dtype)
    far = (rng.standard_normal((40, 8)) + 3.0).astype(dtype)
    near = np.concatenate([far[:5] * 0.5, q / a]).astype(dtype)  # q / a: distance 0 from row i's query
    keys = np.concatenate([far, near])
    values = rng.standard_normal((keys.shape[0], 3)).astype(dtype)

    chunks = _chunks_of(keys, values, 40)  # far ones first, then the exact matches
    got = patch_posterior_mean(q, chunks, 3, a, s2)
    ref = _reference_posterior_mean(q, keys, values, a, s2)
    # every row collapses on its own match (weight 1 to float32 precision): its value exactly
    np.testing.assert_allclose(got, ref, atol=2e-6 if dtype == np.float32 else 1e-12, rtol=0)
    np.testing.assert_allclose(ref, values[45:], atol=1e-6)


def test_the_fused_pass_gives_the_same_numbers_on_one_thread_or_two():
    """Rows are split among threads; each row's arithmetic is the same on any split, to the bit."""
    import numba

    from statphys_diffusion._kernels.patches import patch_posterior_mean

    rng = np.random.default_rng(6)
    q = rng.standard_normal((37, 12)).astype(np.float32)
    keys = rng.standard_normal((300, 12)).astype(np.float32)
    values = rng.standard_normal((300, 2)).astype(np.float32)

    chunks = _chunks_of(keys, values, 70)
    before = numba.get_num_threads()
    try:
        runs = []
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            runs.append(patch_posterior_mean(q, chunks, 2, 0.7, 0.4, return_lse=True))
    finally:
        numba.set_num_threads(before)
    for out, lse in runs[1:]:
        assert np.array_equal(out, runs[0][0]) and np.array_equal(lse, runs[0][1])
    np.testing.assert_allclose(runs[0][0], _reference_posterior_mean(q, keys, values, 0.7, 0.4), atol=2e-5)


def test_concurrent_callers_leave_blas_with_its_own_thread_count():
    """The fused pass runs BLAS single-threaded while it works; callers in several threads at once must
    not restore each other's limit: afterwards every BLAS library has its thread count of before."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    from statphys_diffusion._kernels.patches import patch_posterior_mean

    before = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    rng = np.random.default_rng(7)
    q = rng.standard_normal((64, 10)).astype(np.float32)
    keys = rng.standard_normal((2000, 10)).astype(np.float32)
    values = rng.standard_normal((2000, 3)).astype(np.float32)

    chunks = _chunks_of(keys, values, 100)

    def call(_):
        return patch_posterior_mean(q, chunks, 3, 0.8, 0.5)

    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(call, range(16)))
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert after == before
    for out in outs[1:]:
        assert np.array_equal(out, outs[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ls_over_several_chunks_of_training_images_equals_the_brute_force_loop(dtype, monkeypatch):
    """LS runs each pixel over chunks of training images (online log-sum-exp across them); a chunk
    budget of a few images forces many chunks, including a last partial one (17 images)."""
    from statphys_diffusion import local

    rng = np.random.default_rng(8)
    train = rng.uniform(-1, 1, (17, 2, 5, 4))
    x = rng.standard_normal((3, 2, 5, 4))
    model = sd.LocalEmpirical(train.astype(dtype), patch_size=3)
    a, s2 = float(model.schedule.alpha(0.3)), float(model.schedule.sigma2(0.3))
    monkeypatch.setattr(local, "_CHUNK_BYTES", 4 * (2 * 9 + 3) * np.dtype(dtype).itemsize)  # 4 images
    got = model.denoise(x.reshape(3, -1).astype(dtype), 0.3).reshape(x.shape)
    ref = _brute_ls(train, x, a, s2, 3)
    np.testing.assert_allclose(got, ref, atol=1e-9 if dtype == np.float64 else 1e-5, rtol=0)
