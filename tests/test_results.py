"""The result vocabulary: every tidy result gives plain-dict rows, a DataFrame of them and a compact repr."""

from __future__ import annotations

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion._results import TidyResult

OU = sd.OrnsteinUhlenbeck()


def _results():
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.2, 0.2], labels=[0, 1], schedule=OU)
    two = sd.EmpiricalDistribution(np.array([[-1.0], [1.0]]), schedule=OU)
    ts = np.geomspace(0.05, 2.0, 8)
    return {
        "EntropyRate": sd.entropy_rate(gm, ts, n=200, rng=0, n_bootstrap=5),
        "EntropyEstimate": sd.conditional_entropy(gm, ts),
        "CentralBranch": sd.central_branch(two, ts),
        "LateStartScan": sd.LateStartScan(ts[:4], np.arange(4.0), np.zeros(4), float(ts[1]), "second_difference"),
        "CovarianceSpectrum": sd.covariance_spectrum(np.random.default_rng(0).normal(size=(40, 3))),
        "CollapseCurve": sd.posterior_collapse(sd.EmpiricalDistribution(np.eye(3)), ts, n=20, rng=1),
        **_more_results(gm, ts),
    }


def _more_results(gm, ts):
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(6, 2))
    emp = sd.EmpiricalDistribution(pts, schedule=OU)
    basis = np.eye(2)[:, :1]
    walk = sd.OnlineClassifier(n_steps=6).run(gm, n=3, t_start=1.0, t_end=0.1, rng=0, chains="joint")
    return {
        "Draws": gm.sample(5, 0.3, rng=rng),
        "MixtureComponents": gm.components,
        "NearestNeighbours": sd.nearest_neighbours(pts[:3] + 0.01, pts, k=2),
        "OnlineTrack": walk,
        "AttractorCensus": sd.attractor_census(emp, pts + 0.01, 0.01),
        "TangentJacobian": sd.tangent_jacobian(emp, pts[:3], 0.3, basis, n_normal_probes=2, rng=0),
        "GeometricMemorization": sd.geometric_memorization(10, [1.0, 0.1], ts),
        "LateInitGaussian": sd.gaussian_late_init(gm, 1.0),
        "CloningResult": sd.cloning_agreement(gm, [0.2, 0.8], 4, rng=np.random.default_rng(0), n_steps=10),
        "SymmetryBreaking": sd.symmetry_breaking_time(sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1)),
        "FixedPoints": sd.fixed_points_1d(sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1), 0.3),
        "ExactCloning": sd.exact_cloning_agreement(gm, [0.8, 0.2], 50, rng=0),
        "ManifoldDimension": sd.manifold_dimension(emp, pts[0], [0.1, 0.5], rng=0),
        "SampleClassification": sd.classify_samples(pts[:3] + 0.01, pts, delta_m=0.1, delta_s=0.1),
        "RecoveryTime": sd.recovery_time(emp, pts[:2], delta=0.5, n_trials=2, steps=4, n_bisect=3, rng=0),
        "ExcessEntropy": sd.excess_entropy(emp, [0.2, 1.0], n=20, rng=0),
    }


# the columns each result's to_rows() documents (one row per natural unit; OnlineTrack: 7 times x
# (3 joint chains per class x 2 classes) x 2 classes)
COLUMNS = {
    "Draws": (5, ["sample", "component", "label", "t", "x_0", "x0_0"]),
    "MixtureComponents": (
        2,
        ["component", "weight", "log_weight", "mean_sq_norm", "class", "covariance", "variance", "mean_0"],
    ),
    "NearestNeighbours": (3 * 2, ["sample", "rank", "index", "distance"]),
    "OnlineTrack": (7 * (3 * 2) * 2, ["t", "step", "chain", "class", "posterior", "generated_from"]),
    "AttractorCensus": (
        None,
        ["t", "attractor", "kind", "basin", "spectral_radius", "nearest_index", "nearest_distance"],
    ),
    "TangentJacobian": (3, ["t", "point", "direction", "tangent", "normal"]),
    "GeometricMemorization": (8 * 2, ["t", "direction", "variance", "retained", "theta"]),
    "LateInitGaussian": (1, ["t", "direction", "variance"]),
    "CloningResult": (2, ["t", "phi", "phi_stderr", "n_pairs"]),
    "FixedPoints": (None, ["t", "dynamics", "x", "eigenvalue", "stable"]),
    "ExactCloning": (2, ["t", "phi", "phi_stderr", "n_pairs"]),
    "ManifoldDimension": (2 * 2, ["t", "rank", "singular_value", "dimension"]),
    "SampleClassification": (3, ["sample", "d_train", "d_synth", "train_index", "synth_index", "label"]),
    "RecoveryTime": (2, ["sample", "t", "probability", "bracketed"]),
    "ExcessEntropy": (2, ["t", "f_e", "f_e_stderr"]),
}


@pytest.mark.parametrize("name", list(_results()))
def test_rows_frame_and_repr(name):
    res = _results()[name]
    assert isinstance(res, TidyResult)
    rows = res.to_rows()
    assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
    for r in rows:
        for v in r.values():
            assert isinstance(v, (int, float, str, bool, type(None))), (name, type(v))
    pd = pytest.importorskip("pandas")
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(rows)
    assert list(frame.columns) == list(rows[0])
    text = repr(res)
    assert text.startswith(type(res).__name__ + "(") and len(text) < 800  # arrays shown by shape, not content


def test_entropy_rate_rows_is_a_deprecated_alias():
    res = _results()["EntropyRate"]
    with pytest.warns(DeprecationWarning, match="to_rows"):
        old = res.rows()
    new = res.to_rows()
    assert len(old) == len(new) and [r["t"] for r in old] == [r["t"] for r in new]


def test_memorized_fraction_and_trajectory_collapse_are_results_that_unpack_as_before():
    r = np.array([0.1, 0.2, 0.5, 0.9])
    mf = sd.memorized_fraction(r, method="wilson")
    assert isinstance(mf, sd.MemorizedFraction) and mf.value == 0.5 and mf.n == 4
    frac, lo, hi = mf
    assert (frac, lo, hi) == (mf.value, mf.low, mf.high) == (mf[0], mf[1], mf[2])
    # the Wilson interval of 2 of 4 (closed form with z = 1.96)
    z = 1.959963984540054
    centre = (0.5 + z * z / 8) / (1 + z * z / 4)
    half = z * np.sqrt(0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert np.isclose(lo, centre - half) and np.isclose(hi, centre + half)
    assert mf.to_rows()[0]["method"] == "wilson" and "MemorizedFraction(" in repr(mf)
    emp = sd.EmpiricalDistribution(np.array([[-3.0, 0.0], [3.0, 0.0]]))
    ts = np.array([1.0, 0.5, 0.1])
    traj = np.stack(
        [np.array([[0.1, 0.0], [-0.2, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([[2.5, 0.0], [-2.5, 0.0]])]
    )
    tc = sd.trajectory_collapse_times(traj, ts, emp.points, emp.schedule)
    t_c, idx = tc
    assert isinstance(tc, sd.TrajectoryCollapse) and np.array_equal(t_c, tc.t) and idx is tc.nearest_index
    assert [row["final_nearest_index"] for row in tc.to_rows()] == [1, 0]


def test_former_tuples_are_results_that_unpack_as_before():
    bistable = sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1)
    fp = sd.fixed_points_1d(bistable, 0.3)
    pts, eig = fp
    assert pts is fp.points and eig is fp.eigenvalues and fp[0] is pts and len(fp) == 2
    # two stable minima around the central saddle (a_t + H < 0 where the drift contracts)
    assert pts.size == 3 and fp.stable.tolist() == [True, False, True]
    assert [r["stable"] for r in fp.to_rows()] == fp.stable.tolist()
    gm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], [0.2, 0.2], labels=[0, 1], schedule=OU)
    ex = sd.exact_cloning_agreement(gm, [0.8, 0.2], 50, rng=0)
    phi, phi_se = ex
    assert isinstance(ex, sd.CloningResult) and phi is ex.phi and phi_se is ex.phi_stderr
    assert ex.branch_times.tolist() == [0.8, 0.2]  # in the order given, as the tuple was
    w, v = sd.top_hessian_eigenpairs(bistable, [0.3], 0.3, 1)
    assert isinstance(sd.top_hessian_eigenpairs(bistable, [0.3], 0.3), sd.EigenPairs) and v.shape == (1, 1)
    np.testing.assert_allclose(w, bistable.hessian(np.array([[0.3]]), 0.3)[0, 0], rtol=1e-12)
    t2, scale = sd.match_time(0.5, OU, sd.VPSDE())
    m = sd.match_time(0.5, OU, sd.VPSDE())
    assert isinstance(m, sd.MatchedTime) and (m.t, m.scale) == (t2, scale)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_new_results_have_their_documented_columns_and_one_row_per_unit(name):
    res = _results()[name]
    n_rows, cols = COLUMNS[name]
    rows = res.to_rows()
    if n_rows is not None:
        assert len(rows) == n_rows
    else:
        assert len(rows) == res.points.shape[0] >= 1
    assert list(rows[0]) == cols
    # the values are the result's own, row by row (spot checks)
    if name == "NearestNeighbours":
        assert [r["distance"] for r in rows[:2]] == res.distances[0].tolist()
    if name == "GeometricMemorization":
        assert rows[1]["retained"] == res.retained[0, 1] and rows[1]["variance"] == 0.1
    if name == "MixtureComponents":
        np.testing.assert_allclose([r["variance"] for r in rows], [0.2, 0.2], rtol=1e-12)  # tr(0.2 I) / d


def test_wide_points_are_left_out_of_the_rows():
    gm = sd.GaussianMixture.isotropic(np.zeros((1, 40)), 1.0)
    row = gm.sample(2, 0.5, rng=np.random.default_rng(0)).to_rows()[0]
    assert list(row) == ["sample", "component", "label", "t"]


@pytest.mark.parametrize(
    "name",
    [
        "EntropyRate",
        "CollapseCurve",
        "SymmetryBreaking",
        "AttractorCensus",
        "GeometricMemorization",
        "CloningResult",
        "OnlineTrack",
        "CentralBranch",
    ],
)
def test_plot_draws_on_the_given_axes_and_returns_them(name):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = _results()[name]
    fig, ax = plt.subplots()
    assert res.plot(ax=ax) is ax
    assert ax.lines or ax.collections  # something was drawn
    plt.close(fig)
    assert res.plot() is not None  # ax=None: the current axes
    plt.close("all")


def test_renamed_members_warn_and_return_the_same_values():
    res = _results()["CloningResult"]
    with pytest.warns(DeprecationWarning, match="phi_stderr"):
        np.testing.assert_array_equal(res.se, res.phi_stderr)
    tj = _results()["TangentJacobian"]
    with pytest.warns(DeprecationWarning, match="retained_count"):
        assert tj.retained(np.ones(1)) == tj.retained_count(np.ones(1))


def test_plots_overlay_with_their_own_colour_and_label():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    res = _results()
    fig, ax = plt.subplots()
    res["EntropyRate"].plot(ax, classes=False, color="C3", label="s = 2")
    res["SymmetryBreaking"].plot(ax, color="C4", label="sde scan")
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert mcolors.same_color(lines["s = 2"].get_color(), "C3")
    assert mcolors.same_color(lines["sde scan"].get_color(), "C4")
    geo = res["GeometricMemorization"]
    n_distinct = np.unique(geo.variances).size
    geo.plot(ax, colors=["C7"] * n_distinct)
    assert all(mcolors.same_color(ln.get_color(), "C7") for ln in ax.lines if ln.get_label().startswith("lambda ="))
    with pytest.raises(ValueError, match="colors must have one entry per distinct variance"):
        geo.plot(ax, colors=["C7"] * (n_distinct + 1))
    plt.close(fig)
