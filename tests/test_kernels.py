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
