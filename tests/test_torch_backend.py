"""The torch backend of the isotropic streaming path against the numba kernel and a dense reference.

Both backends compute the same online log-sum-exp; in float64 they differ only by the order of
the floating-point sums (GEMM blocking, the vectorised exponential), so they must agree to
1e-10 relative at every noise level, collapsed (one point carries the weight) to fully mixed.
In float32 the products are rounded to 2^-24 relative, amplified by |x| |mu| / c in the logits:
1e-3 relative on outputs of order one.
"""

import numpy as np
import pytest

import statphys_diffusion as sd

torch = pytest.importorskip("torch")


def _pair(n=300, d=40, seed=0, labels=True, schedule=None):
    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((n, d))
    lab = rng.integers(0, 3, n) if labels else None
    kw = {"schedule": schedule} if schedule is not None else {}
    return (
        sd.EmpiricalDistribution(pts, lab, **kw),
        sd.EmpiricalDistribution(pts, lab, backend="torch", **kw),
        rng,
    )


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


@pytest.mark.parametrize("t", [0.01, 0.1, 0.5, 1.5, 4.0])
def test_torch_backend_matches_numba_in_float64_from_collapsed_to_mixed(t):
    ref, tor, rng = _pair()
    x = ref.sample(64, t, rng=rng).x
    assert tor.backend == "torch" and ref.backend == "numba"
    for name in ("score", "denoise", "log_prob", "class_posterior"):
        a, b = getattr(tor, name)(x, t), getattr(ref, name)(x, t)
        assert isinstance(a, np.ndarray) and a.dtype == np.float64
        assert _rel(a, b) < 1e-10, (name, t, _rel(a, b))


def test_torch_backend_float32_and_unequal_variances():
    rng = np.random.default_rng(1)
    means = rng.standard_normal((50, 24))
    var = rng.uniform(0.01, 2.0, 50)
    ref = sd.GaussianMixture.isotropic(means, var)
    tor = sd.GaussianMixture.isotropic(means, var, backend="torch")
    x = ref.sample(40, 0.3, rng=rng).x
    # unequal variances exercise the 1/c_k - 1/c_min correction of the logits
    assert _rel(tor.score(x, 0.3), ref.score(x, 0.3)) < 1e-10
    x32 = x.astype(np.float32)
    s32 = tor.score(x32, 0.3)
    assert s32.dtype == np.float32
    assert _rel(s32.astype(np.float64), ref.score(x, 0.3)) < 1e-3


def test_torch_kernel_chunks_match_the_dense_softmax():
    from statphys_diffusion._kernels import streaming, torch_streaming

    rng = np.random.default_rng(2)
    mu = 3 * rng.standard_normal((37, 12))
    var = rng.uniform(0.0, 0.5, 37)
    log_w = np.log(rng.dirichlet(np.ones(37)))
    labels = rng.integers(0, 4, 37)
    x = rng.standard_normal((11, 12))
    a, s2 = 0.8, 0.36
    musq = np.einsum("kd,kd->k", mu, mu)
    logits = streaming.dense_iso_logits(x, mu, musq, log_w, var, a, s2)
    lse = np.logaddexp.reduce(logits, axis=1)
    w = np.exp(logits - lse[:, None])
    c = a * a * var + s2
    score = (a * (w / c) @ mu - (w / c).sum(1)[:, None] * x) / w.sum(1)[:, None]
    den = (s2 * (w / c) @ mu + a * (w * var / c).sum(1)[:, None] * x) / w.sum(1)[:, None]
    cls = np.stack([w[:, labels == k].sum(1) for k in range(4)], axis=1)
    T = lambda v, dt=torch.float64: torch.as_tensor(v, dtype=dt)  # noqa: E731
    out = torch_streaming.streaming_iso_torch(
        T(x), T(mu), T(musq), T(log_w), T(var), a, s2, T(labels, torch.int64), 4, True, True, row_block=4, chunk=5
    )
    got = [torch_streaming.as_numpy(o) for o in out]
    np.testing.assert_allclose(got[0], lse, rtol=1e-12)
    np.testing.assert_allclose(got[1], score, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[2], den, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[3], cls, rtol=1e-10, atol=1e-14)


def test_torch_backend_in_relabelled_and_conditional_models():
    ref, tor, rng = _pair(n=120, d=20)
    x = ref.sample(16, 0.4, rng=rng).x
    groups = [[0, 1], [2]]
    assert _rel(tor.relabel(groups).class_posterior(x, 0.4), ref.relabel(groups).class_posterior(x, 0.4)) < 1e-10
    assert _rel(tor.conditional(2).score(x, 0.4), ref.conditional(2).score(x, 0.4)) < 1e-10
    assert tor.conditional(2).backend == "torch"


def test_backend_arguments_are_checked():
    pts = np.zeros((3, 10))
    with pytest.raises(ValueError, match="backend must be one of"):
        sd.EmpiricalDistribution(pts, backend="jax")
    with pytest.raises(ValueError, match="device is for backend='torch'"):
        sd.EmpiricalDistribution(pts, device="cpu")
    with pytest.raises(ValueError, match="is not a torch device"):
        sd.EmpiricalDistribution(pts, backend="torch", device="no-such-device")


def test_nearest_neighbours_torch_backend_matches_numpy():
    rng = np.random.default_rng(3)
    train = rng.standard_normal((500, 30))
    x = train[rng.integers(0, 500, 20)] + 0.3 * rng.standard_normal((20, 30))
    ref = sd.nearest_neighbours(x, train, k=3, chunk=64)
    tor = sd.nearest_neighbours(x, train, k=3, chunk=64, backend="torch")
    np.testing.assert_array_equal(tor.indices, ref.indices)
    np.testing.assert_allclose(tor.distances, ref.distances, rtol=1e-12)
    # brute force: the k smallest exact distances
    full = np.sqrt(((x[:, None, :] - train[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(tor.indices, np.argsort(full, axis=1)[:, :3])
    with pytest.raises(ValueError, match="backend must be"):
        sd.nearest_neighbours(x, train, backend="cupy")
    with pytest.raises(ValueError, match="device is for backend='torch'"):
        sd.nearest_neighbours(x, train, device="cpu")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nearest_neighbours_takes_tensors_and_returns_the_numpy_table(dtype):
    """Tensor samples and/or train: the search runs in torch where they are (backend chosen from the
    inputs), the result is the numpy table; the indices equal brute force on the same values."""
    rng = np.random.default_rng(5)
    train = rng.standard_normal((300, 12))
    x = train[rng.integers(0, 300, 15)] + 0.2 * rng.standard_normal((15, 12))
    ref = sd.nearest_neighbours(x, train, k=2)
    for xs, ys in ((torch.as_tensor(x, dtype=dtype), train), (x, torch.as_tensor(train, dtype=dtype))):
        out = sd.nearest_neighbours(xs, ys, k=2, chunk=50)
        assert isinstance(out.distances, np.ndarray) and out.distances.dtype == np.float64
        assert out.indices.dtype == np.int64
        np.testing.assert_array_equal(out.indices, ref.indices)
        # float64 distances from the (dtype-rounded) inputs: float32 rounding of unit-scale data ~ 1e-7
        np.testing.assert_allclose(out.distances, ref.distances, rtol=1e-12 if dtype == torch.float64 else 1e-6)
    # backend="numpy" with a tensor: a host copy, the same table
    cpu = sd.nearest_neighbours(torch.as_tensor(x), train, k=2, backend="numpy")
    np.testing.assert_array_equal(cpu.indices, ref.indices)
    bad = torch.as_tensor(x).clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="samples contains NaN"):
        sd.nearest_neighbours(bad, train)
    with pytest.raises(ValueError, match="train must have shape"):
        sd.nearest_neighbours(torch.as_tensor(x), torch.as_tensor(train[:, :5]))
    with pytest.raises(ValueError, match="float32 or float64"):
        sd.nearest_neighbours(torch.as_tensor(x).to(torch.float16), train)
    with pytest.raises(ValueError, match="k must be <= N"):
        sd.nearest_neighbours(torch.as_tensor(x), train[:3], k=4)
    # a numpy input on the torch path goes through the same shape check as a tensor
    with pytest.raises(ValueError, match=r"samples must have shape \(M, d\)"):
        sd.nearest_neighbours(x[0], torch.as_tensor(train))


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_torch_tensors_in_give_torch_tensors_out_with_the_numpy_values(backend):
    """Tensor in -> tensor out (dtype and device kept) for either backend; float64 values equal to the
    numpy path to 1e-10 (the same kernel, or the numba kernel through a host copy)."""
    ref, _, rng = _pair(n=200, d=30, seed=4)
    mdl = sd.EmpiricalDistribution(ref.points, ref.labels, backend=backend)
    x = ref.sample(16, 0.4, rng=rng).x
    xt = torch.as_tensor(x)
    for name in ("score", "denoise", "log_prob", "class_posterior", "component_posterior"):
        out = getattr(mdl, name)(xt, 0.4)
        assert isinstance(out, torch.Tensor) and out.device == xt.device, name
        assert out.dtype == torch.float64
        assert _rel(out.numpy(), getattr(ref, name)(x, 0.4)) < 1e-10, name
    s32 = mdl.score(xt.float(), 0.4)
    assert s32.dtype == torch.float32
    assert _rel(s32.double().numpy(), ref.score(x, 0.4)) < 1e-3  # float32 rounding (module docstring)
    # class-conditional scores go through numpy and come back as tensors
    sc = mdl.score(xt, 0.4, y=1)
    assert isinstance(sc, torch.Tensor) and _rel(sc.numpy(), ref.score(x, 0.4, y=1)) < 1e-10


def test_bad_tensors_are_refused_with_the_argument_named():
    _, tor, _ = _pair(n=50, d=20)
    with pytest.raises(ValueError, match=r"x must have shape \(M, 20\)"):
        tor.score(torch.zeros(3, 5, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="float32 or float64"):
        tor.score(torch.zeros(3, 20, dtype=torch.int64), 0.5)
    bad = torch.zeros(3, 20, dtype=torch.float64)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        tor.score(bad, 0.5)
    with pytest.raises(ValueError, match="t"):
        tor.score(torch.zeros(3, 20, dtype=torch.float64), -1.0)
