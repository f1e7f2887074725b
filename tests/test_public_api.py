"""The public API's shape (issue 32 tidy-ups): the package docstring indexes every public name by
concept; samplers and metrics at top level; every curve result plots; theory reads declared protocol
members, never probes a model with getattr."""

import pathlib
import re

import matplotlib
import numpy as np
import pytest

import statphys_diffusion as sd

matplotlib.use("Agg")


def test_the_package_docstring_indexes_every_public_name_once():
    lines = [ln for ln in sd.__doc__.splitlines() if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s{2,}\S", ln)]
    names = [ln.split()[0] for ln in lines]
    assert sorted(names) == sorted(set(names)), "a name is indexed twice"
    assert set(names) == set(sd.__all__)


def test_samplers_and_metrics_are_exported_at_top_level():
    from statphys_diffusion import metrics, samplers

    assert sd.DDIM is samplers.DDIM and sd.SampleResult is samplers.SampleResult
    assert sd.frechet_distance is metrics.frechet_distance


def test_theory_reads_declared_members_only():
    """No getattr(model, ...) probes remain in theory/ (theory depends on the protocols only)."""
    root = pathlib.Path(sd.__file__).parent / "theory"
    probes = [
        f"{p.name}:{i + 1}"
        for p in sorted(root.glob("*.py"))
        for i, line in enumerate(p.read_text().splitlines())
        if re.search(r"getattr\((model|self\.model)\b", line)
    ]
    assert probes == []


GM1 = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.05, labels=[0, 1])
GM2 = sd.GaussianMixture.isotropic([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], 0.1, labels=[0, 1, 2])


CURVES = {  # built inside the test, not at collection
    "ExcessEntropy": lambda: sd.excess_entropy(
        sd.EmpiricalDistribution(np.random.default_rng(0).standard_normal((20, 2))), [0.1, 0.5, 1.0], n=50, rng=0
    ),
    "EntropyEstimate": lambda: sd.conditional_entropy(GM2, [0.1, 0.5, 1.0], n=200, rng=0),
    "LateStartScan": lambda: sd.LateStartScan(
        np.array([0.2, 0.5, 1.0]), np.array([1.0, 0.5, 0.7]), np.full(3, 0.1), 0.5, "given"
    ),
    "ManifoldDimension": lambda: sd.manifold_dimension(GM2, np.zeros(2), [0.2, 0.5], rng=0),
    "TangentJacobian": lambda: sd.tangent_jacobian(GM2, np.zeros((3, 2)), 0.5, np.eye(2)[:, :1], rng=0),
    "FixedPoints": lambda: sd.fixed_points_1d(GM1, 0.3),
    "SampleResult-trajectory": lambda: sd.DDIM(5).sample(GM2, n=4, rng=0, return_trajectory=True),
    "SampleResult-final": lambda: sd.DDIM(5).sample(GM2, n=4, rng=0),
}


@pytest.mark.parametrize("name", list(CURVES))
def test_every_curve_result_plots_on_a_given_axes(name):
    import matplotlib.pyplot as plt

    result = CURVES[name]()
    fig, ax = plt.subplots()
    assert result.plot(ax=ax) is ax
    assert ax.lines or ax.collections or ax.patches, "nothing was drawn"
    plt.close(fig)


def test_sample_result_is_a_tidy_result_with_its_schedule():
    res = sd.DDIM(4).sample(GM2, n=3, rng=1)
    assert res.schedule is GM2.schedule
    rows = res.to_rows()
    assert len(rows) == 3 and set(rows[0]) >= {"sample", "t", "norm", "x_0", "x_1"}
    assert "SampleResult(" in repr(res)


def test_a_legend_of_hundreds_of_curves_is_left_out():
    import matplotlib.pyplot as plt

    from statphys_diffusion._results import legend

    fig, ax = plt.subplots()
    for k in range(200):
        ax.plot([0, 1], [k, k], label=f"component {k}")
    assert legend(ax) is None and ax.get_legend() is None
    assert any("200 curves" in t.get_text() for t in ax.texts)
    plt.close(fig)
