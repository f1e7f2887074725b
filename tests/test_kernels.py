"""Kernel building blocks against numpy references."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from statphys_diffusion._kernels.fastexp import exp_inplace


@given(arrays(np.float64, st.integers(1, 300), elements=st.floats(-760.0, 709.0)))
def test_fast_exp_matches_numpy_to_2_ulp(z):
    y = z.copy()
    exp_inplace(y, y.size, np.empty(y.size, dtype=np.int64))
    ref = np.exp(z)
    ok = z >= -708.0
    # Cody-Waite reduction + degree-13 Taylor: measured 1 ulp; 2 ulp (4.4e-16) is the bound tested
    np.testing.assert_array_less(np.abs(y[ok] - ref[ok]), 4.5e-16 * ref[ok] + 1e-320)
    assert np.all(y[~ok] == 0.0)


@given(arrays(np.float32, st.integers(1, 300), elements=st.floats(-87.0, 88.0, width=32)))
def test_float32_exp_matches_float64_numpy_to_1_ulp(t):
    from numba import njit

    from statphys_diffusion._kernels.fastexp import exp32

    @njit
    def apply(t, out):  # exp32 inside a loop, as the kernels call it (inlined and vectorised there)
        for i in range(t.size):
            out[i] = exp32(t[i])

    y = np.empty_like(t)
    apply(t, y)
    ref = np.exp(t.astype(np.float64))
    # Cephes' expf polynomial and Cody-Waite reduction: the bound tested is 1 ulp of the float32 result
    ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
    np.testing.assert_array_less(np.abs(y.astype(np.float64) - ref), ulp)
    assert y.dtype == np.float32


def test_fast_exp_special_values():
    # compile the fast-math kernels that inline exp_inplace first: numba shares the compiled
    # callee, so a caller's fast-math flags must not degrade it (they did with reassoc)
    import statphys_diffusion as sd

    sd.GaussianMixture.isotropic([[0.0], [1.0]], [0.1, 0.2]).score(np.zeros((3, 1)), 0.5)
    sd.EmpiricalDistribution(np.eye(12)).score(np.zeros((2, 12)), 0.5)
    z = np.array([0.0, -0.0, -np.inf, -1e-300, np.log(2.0), -708.0, -708.5, 709.0])
    y = z.copy()
    exp_inplace(y, y.size, np.empty(y.size, dtype=np.int64))
    assert y[0] == 1.0 and y[1] == 1.0 and y[2] == 0.0 and y[3] == 1.0
    assert abs(y[4] - 2.0) <= 4.5e-16 * 2
    assert y[5] > 0 and y[6] == 0.0
    assert np.isfinite(y[7]) and abs(y[7] / np.exp(709.0) - 1) < 5e-16


def _dense_reference(x, mu, var, log_w, a, s2):
    """score, denoiser and log p of an isotropic mixture from the full float64 softmax (no cut)."""
    from statphys_diffusion._kernels.streaming import dense_iso_logits

    musq = np.einsum("kd,kd->k", mu, mu)
    logits = dense_iso_logits(x, mu, musq, log_w, var, a, s2)
    lse = np.logaddexp.reduce(logits, axis=1)
    w = np.exp(logits - lse[:, None])
    c = a * a * var + s2
    score = a * (w / c) @ mu - (w / c).sum(1)[:, None] * x
    den = s2 * (w / c) @ mu + a * (w * var / c).sum(1)[:, None] * x
    return lse, score, den


def test_sparse_second_product_matches_the_dense_path_from_collapsed_to_mixed(monkeypatch):
    """The cut and the gather-accumulate agree with the GEMM path and the full softmax to 1e-12.

    Points 5 apart in d = 64: at sigma^2 = 1e-3 every row is collapsed on one point (all other
    weights below e^-46: the sparse path runs); at sigma^2 = 50 every weight counts (GEMM path).
    """
    from statphys_diffusion._kernels import streaming

    calls = {"sparse": 0}
    real = streaming._sparse_accumulate

    def counting(*args):
        calls["sparse"] += 1
        return real(*args)

    monkeypatch.setattr(streaming, "_sparse_accumulate", counting)
    rng = np.random.default_rng(0)
    mu = 5.0 * rng.standard_normal((2000, 64))
    var = np.zeros(2000)
    log_w = np.full(2000, -np.log(2000.0))
    musq = np.einsum("kd,kd->k", mu, mu)
    codes = np.zeros(2000, np.int64)
    for s2, expect_sparse in ((1e-3, True), (0.3, None), (3.0, None), (50.0, False)):
        a = 1.0
        x = mu[rng.integers(0, 2000, 48)] + np.sqrt(s2) * rng.standard_normal((48, 64))
        calls["sparse"] = 0
        kw = {"chunk": 256, "row_block": 16}
        lse_s, sc_s, de_s, _ = streaming.streaming_iso(x, mu, musq, log_w, var, a, s2, codes, 0, True, True, **kw)
        n_sparse = calls["sparse"]
        lse_d, sc_d, de_d, _ = streaming.streaming_iso(
            x, mu, musq, log_w, var, a, s2, codes, 0, True, True, sparse=False, **kw
        )
        if expect_sparse is True:
            assert n_sparse > 0
        if expect_sparse is False:
            assert n_sparse == 0
        lse_r, sc_r, de_r = _dense_reference(x, mu, var, log_w, a, s2)
        # both evaluate |x - a mu|^2 / c through the expansion |x|^2 - 2 a x.mu + a^2 |mu|^2, whose
        # rounding is 1e-16 of |x|^2 / c (1.6e6 at s2 = 1e-3) in different orders: the reference is
        # held to 1e-13 of that scale, the sparse path to the GEMM path of the same kernel to 1e-12
        expansion = 1.0 + np.max(np.einsum("ij,ij->i", x, x)) / (a * a * var.min() + s2)
        for got, dense, ref in ((lse_s, lse_d, lse_r), (sc_s, sc_d, sc_r), (de_s, de_d, de_r)):
            scale = np.max(np.abs(ref))
            assert np.max(np.abs(got - dense)) <= 1e-12 * scale
            assert np.max(np.abs(got - ref)) <= 1e-13 * expansion * scale


def test_gemm_cross_equals_the_numpy_product_for_any_memory_layout():
    """The first product of a chunk (scipy's gemm written into a caller's buffer) equals x @ mu.T.

    The kernel hands it C-ordered arrays; Fortran-ordered and strided inputs take the BLAS
    wrapper's copying path and must give the same numbers. Tolerance: float64 products of
    length 37 differ from numpy's only in summation order (1e-13 relative is ~ 500 ulp of margin);
    float32 to 1e-5 relative for the same reason.
    """
    from statphys_diffusion._kernels.streaming import _gemm_cross

    rng = np.random.default_rng(3)
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        x = rng.standard_normal((11, 37)).astype(dtype)
        mu = rng.standard_normal((23, 37)).astype(dtype)
        layouts = {
            "C": (x, mu),
            "F": (np.asfortranarray(x), np.asfortranarray(mu)),
            "strided": (np.repeat(x, 2, axis=0)[::2], np.repeat(mu, 2, axis=1)[:, ::2]),
        }
        want = x.astype(np.float64) @ mu.astype(np.float64).T
        for name, (xx, mm) in layouts.items():
            out = np.full((11, 23), np.nan, dtype=dtype)
            _gemm_cross(out, xx, mm)
            assert out.dtype == dtype, name
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max(), err_msg=name)


@given(
    n=st.integers(1, 6),
    c=st.integers(1, 4),
    p=st.integers(1, 20),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_gather_locations_equals_numpys_fancy_index(n, c, p, dtype, seed):
    # the locality model's receptive-field keys: the numba copy must give numpy's array exactly (the same
    # values in the same (channel, location) order), for any subset of locations, sorted or not
    from statphys_diffusion._kernels.patches import gather_locations

    rng = np.random.default_rng(seed)
    block = rng.standard_normal((n, c, p)).astype(dtype)
    idx = rng.choice(p, size=int(rng.integers(1, p + 1)), replace=False).astype(np.int64)
    out = np.empty((n, c * idx.size), dtype=dtype)
    gather_locations(block, idx, out)
    assert np.array_equal(out, block[:, :, idx].reshape(n, -1))
