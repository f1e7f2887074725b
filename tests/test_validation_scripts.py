"""validation/ scripts run end to end in --quick mode (pipeline and outputs, not the science)."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses (the scripts' Config) look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _every_json_output_carries_provenance(tmp_path):
    """After each test: every JSON summary a script wrote to its --out folder has issue 34's provenance block
    (a committed output a test copied in as input, byte for byte, is not a new output)."""
    yield
    for path in sorted(tmp_path.glob("*.json")):
        committed = ROOT / "figures" / path.name
        if committed.is_file() and committed.read_bytes() == path.read_bytes():
            continue
        prov = json.loads(path.read_text()).get("provenance")
        assert prov is not None, f"{path.name} has no provenance block"
        assert {"git_commit", "argv", "version", "config", "seconds", "preregistration_sha256"} <= set(prov), path.name
        assert prov["criteria_stated_in"] in ("preregistration", "the script's docstring (pre-issue-34 script)")


def test_sampler_convergence_quick(tmp_path):
    rows = _load("sampler_convergence").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "sampler_convergence.png").is_file()
    table = list(csv.DictReader(open(tmp_path / "sampler_convergence.csv")))
    assert len(table) == len(rows) == 4 * 2 * 2
    assert all(float(r["sw1_mean"]) > 0 for r in table)


def test_symmetry_breaking_quick(tmp_path):
    mod = _load("symmetry_breaking")
    out = mod.main(["--quick", "--part", "toy", "--out", str(tmp_path)])
    # the script's toy numbers are the closed forms (checked to 1e-8 in test_symmetry_breaking.py)
    assert abs(out["toy"]["t_c_sde"] - out["toy"]["t_c_sde_closed_form"]) < 1e-8
    for name in ("sb_potential.png", "sb_bifurcation.png", "sb_margin.png", "sb_cloning.png", "sb_cloning.csv"):
        assert (tmp_path / name).is_file()
    gli = mod.main(["--quick", "--part", "gli", "--out", str(tmp_path)])
    assert (tmp_path / "gli.png").is_file()
    assert gli["gli"]["mixture_2d"]["t_late"] > 0


def test_semantic_information_quick(tmp_path):
    out = _load("semantic_information").main(["--quick", "--out", str(tmp_path)])
    for name in ("semantic_toy.png", "semantic_toy.csv", "semantic_estimators.png", "semantic_estimators.csv"):
        assert (tmp_path / name).is_file()
    # the four estimators of H(Y | X_t) agree within 4 standard errors even at quick sizes
    assert max(out["estimators"]["max_abs_z"].values()) < 4
    peaks = {(p["mixture"], p["separation"]): p["peak_t"] for p in out["toy"]["peaks"]}
    # wider separation: the decision is made earlier in reverse time (larger t)
    assert peaks[("two", 2.0)] < peaks[("two", 4.0)] < peaks[("two", 8.0)]


def test_memorization_quick(tmp_path):
    out = _load("memorization").main(["--quick", "--part", "collapse", "--out", str(tmp_path)])
    for name in ("collapse_phase.png", "collapse_phase.csv", "collapse_times.csv"):
        assert (tmp_path / name).is_file()
    for row in out["collapse"]["isotropic_d200"]:
        # the annealed prediction within 10% of the measured collapse even at quick sizes
        assert abs(row["t_C_measured_origin"] / row["t_C_predicted"] - 1) < 0.1
    out = _load("memorization").main(["--quick", "--part", "geometric", "--out", str(tmp_path)])
    assert (tmp_path / "geometric_memorization.png").is_file()


def test_negative_guidance_quick(tmp_path):
    rows = _load("negative_guidance").main(["--quick", "--part", "1d", "--out", str(tmp_path)])
    assert (tmp_path / "negative_guidance.png").is_file()
    by = {(r["method"], r["scale"]): r for r in rows}
    # exact DNG removes the class; no guidance leaves about its prior weight 0.3
    assert by[("DNG exact", 1.0)]["removed_mass"] < 0.01 < 0.2 < by[("none", 0.0)]["removed_mass"]
    # a large constant negative-prompting scale removes it too, but distorts the rest (far from exact safe draws)
    assert by[("NP", 10.0)]["sw1_to_safe"] > 10 * by[("DNG exact", 1.0)]["sw1_to_safe"]


@pytest.mark.slow
def test_ddpm_samples_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import cli, datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    run = tmp_path / "run"
    args = ["train", "--size", "8", "--n", "500", "--steps", "20", "--batch-size", "16", "--conditional"]
    assert cli.main(args + ["--out", str(run), "--no-progress"]) == 0
    out = _load("ddpm_samples").main(["--run", str(run), "--quick", "--out", str(tmp_path)])
    assert (tmp_path / "ddpm_samples.png").is_file()
    assert 0 <= out["conditional_agreement_mean"] <= 1 and out["fd_own_unconditional_vs_test"] > 0


# .ci/run runs it in its separate slow selection (the default run stays under 5 minutes on 2 cores)
@pytest.mark.slow
def test_network_memorization_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    args = ["--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    out = _load("network_memorization").main(args)
    assert (tmp_path / "network_memorization_quick.png").is_file()
    rows = list(csv.DictReader(open(tmp_path / "network_memorization_quick.csv")))
    assert [int(r["N"]) for r in rows] == [4, 8]
    for r in rows:  # the three categories partition the samples
        total = sum(float(r[f"{k}_{s}"]) for k in ("memorized", "spurious", "generalized") for s in ("pixels",))
        assert abs(total - 1) < 1e-12
    # the exact empirical model finds its training points as attractors at the smallest census t
    assert all(r["exact_census"][0]["n_memorized"] >= 1 for r in out["results"])
    assert out["verdict"] in ("confirmed", "refuted", "not testable with this network")
    # a rerun comes from the per-job cache and the cached networks: same numbers
    again = _load("network_memorization").main(args)
    assert again["memorized_half_crossing_N"] == out["memorized_half_crossing_N"]
    assert list(csv.DictReader(open(tmp_path / "network_memorization_quick.csv"))) == rows
    # --extend keeps the written networks: with the job cache gone nothing is measured again
    import shutil

    shutil.rmtree(tmp_path / "runs" / "memorization-quick" / "results")
    ext = _load("network_memorization").main(args + ["--extend"])
    assert ext["extended"]["measured_this_run"] == [] and len(ext["extended"]["kept"]) == 2
    assert list(csv.DictReader(open(tmp_path / "network_memorization_quick.csv"))) == rows
    assert not (tmp_path / "runs" / "memorization-quick" / "results").exists() or not any(
        (tmp_path / "runs" / "memorization-quick" / "results").iterdir()
    )
    # ... accepts thresholds that differ by float32 rounding (a retrained classifier's features) ...
    path = tmp_path / "network_memorization_quick.json"
    summary = json.loads(path.read_text())
    summary["thresholds"]["spacing_features"] *= 1 + 2e-7
    path.write_text(json.dumps(summary))
    assert _load("network_memorization").main(args + ["--extend"])["extended"]["measured_this_run"] == []
    # ... and refuses a summary whose thresholds differ from the ones recomputed from the data
    summary = json.loads(path.read_text())
    summary["thresholds"]["delta_pixels"] *= 1.01
    path.write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match="threshold delta_pixels"):
        _load("network_memorization").main(args + ["--extend"])


def test_network_dimension_rule_on_planted_curves():
    """The pre-stated rule of network_dimension.py on curves whose answer is known by construction."""
    mod = _load("network_dimension")
    w = (16, 23, 32, 45, 64)
    ramp = dict(zip(w, (10.0, 20.0, 30.0, 40.0, 50.0)))
    assert mod.verdict(ramp, w)[0] == "confirmed"  # each step carries 1/4 of the change
    jump = dict(zip(w, (10.0, 10.0, 10.0, 50.0, 50.0)))
    v, crit = mod.verdict(jump, w)
    assert v == "refuted" and crit["largest_step_share"] == 1.0 and not crit["gradual"]
    assert mod.verdict(dict(zip(w, (50.0, 40.0, 30.0, 20.0, 10.0))), w)[0] == "refuted"  # reverse order
    assert mod.verdict(dict(zip(w, (30.0,) * 5)), w)[0] == "refuted"  # no change
    wiggle = dict(zip(w, (10.0, 30.0, 25.0, 40.0, 50.0)))  # a counter-step of 5 = 12.5% of the change
    assert not mod.verdict(wiggle, w)[1]["monotone"]

    def twin(values):
        return {"rows": [{"kind": "train", "t": 2.0, "dim_0.5": v} for v in values]}

    agree = {"edm": twin([100, 102]), "eps": twin([104, 106]), "x0": twin([96, 98])}  # medians 101, 105, 97
    tr = mod.trusted_times(agree, {16: {2.0: "memorising"}}, (2.0,))[2.0]
    assert tr["trusted"] and abs(tr["twin_spread"] - 8 / 101) < 1e-12
    far = dict(agree, x0=twin([80, 82]))  # spread 24 / 95.33 > 10%
    assert not mod.trusted_times(far, {16: {2.0: "memorising"}}, (2.0,))[2.0]["trusted"]
    assert not mod.trusted_times(agree, {16: {2.0: "undetermined"}}, (2.0,))[2.0]["trusted"]


def test_network_dimension_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    args = ["--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--workers", "1"]
    rows, summary = _load("network_dimension").main(args)
    assert (tmp_path / "network_dimension_quick.png").is_file()
    table = list(csv.DictReader(open(tmp_path / "network_dimension_quick.csv")))
    assert len(table) == len(rows) > 0
    # counts at increasing levels are nested: below 1/4 <= below 1/2 <= below 3/4 <= d (8 x 8 x 3)
    for r in table:
        assert 0 <= int(r["dim_0.25"]) <= int(r["dim_0.5"]) <= int(r["dim_0.75"]) <= 192
    assert {r["prediction"] for r in table} == {"edm", "eps", "x0"}
    assert summary["verdict"] in ("confirmed", "refuted", "not testable with these networks")


def test_network_guidance_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    rows, summary = _load("network_guidance").main(["--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "r")])
    assert (tmp_path / "network_guidance_quick.png").is_file()
    assert [r["method"] for r in rows][0] == "none" and len(rows) == 4
    assert all(0 <= r["removed_rate"] <= 1 and r["fd_own_vs_kept_test"] > 0 for r in rows)
    assert 0 <= summary["false_removed_rate_on_kept_test"] <= 1


def test_network_entropy_steps_options_change_only_the_training_length():
    mod = _load("network_entropy")
    base = {"data": "cifar.zip", "runs": "runs"}
    default = mod.network_config(False, base)
    longer = mod.network_config(False, base, 47_000)
    assert default["train"]["steps"] == 28_000 and longer["train"]["steps"] == 47_000
    # everything else (data, classes, objective, dropout) is the committed configuration's
    assert {k: v for k, v in longer["train"].items() if k != "steps"} == {
        k: v for k, v in default["train"].items() if k != "steps"
    }
    assert longer["classes"] == default["classes"] and "progress" not in default
    with pytest.raises(ValueError, match="steps"):
        mod.network_config(False, base, 0)
    # the warm restart: the committed network's weights file, 19,000 more steps with seed 1
    warm = mod.network_config(False, base, continue_steps=19_000)
    assert warm["init_weights"] == mod._networks.committed_weights(default).name
    assert warm["train"]["steps"] == 19_000 and warm["train"]["seed"] == mod.CONTINUE_SEED != 0
    assert mod.training_images(warm) == (28_000 + 19_000) * 64 and mod.training_images(default) == 28_000 * 64
    with pytest.raises(ValueError, match="not both"):
        mod.network_config(False, base, 47_000, 19_000)
    with pytest.raises(ValueError, match="continue_steps"):
        mod.network_config(False, base, continue_steps=0)


def test_network_entropy_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    rows, peaks, summary = _load("network_entropy").main(["--quick", "--out", str(tmp_path), "--runs", str(tmp_path)])
    assert (tmp_path / "network_entropy_quick.png").is_file()
    # 5 sources x (4 classes + 2 superclasses + 2 + 2 fine) per-class rows + 5 x 4 problem totals
    assert len(peaks) == 5 * 10 + 5 * 4
    # H(Y | X_t) of each exact reference lies in [0, log 4] and grows towards log 4 at large t
    for src in ("exact_class_gaussian", "exact_empirical"):
        h = [r["entropy"] for r in rows if r["source"] == src and r["problem"] == "class"]
        assert all(-1e-9 <= v <= np.log(4) + 1e-9 for v in h) and h[-1] > h[0]
    assert summary["verdict"] in ("confirmed", "partly confirmed", "refuted", "not testable with this network")
    for gate in ("classifier_agreement", "low_noise_residual_integral_nats", "consistency_max"):
        assert np.isfinite(summary["gates"][gate])
    # the residual (on the network's own samples), its calibration on the class-Gaussian's own draws
    # and the held-out diagnostic are all integrals of a squared norm: finite and non-negative
    for key in ("low_noise_residual", "low_noise_residual_class_gaussian", "held_out_residual"):
        assert all(np.isfinite(v) and v >= 0 for v in summary["gates"][key])
    # the 30-step quick network cannot pass its gates: the verdict must say so
    assert not summary["gates_passed"] and summary["verdict"] == "not testable with this network"


# .ci/run runs it in its separate slow selection (the default run stays under 5 minutes on 2 cores)
@pytest.mark.slow
def test_network_symmetry_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    rows, gl_rows, summary = _load("network_symmetry").main(
        ["--quick", "--out", str(tmp_path), "--runs", str(tmp_path)]
    )
    assert (tmp_path / "network_symmetry_quick.png").is_file()
    # the exact centre is stable at the largest t (margin < 0), rows run from large t down and
    # carry the continued branch; the GLI scan has one row per start time, increasing
    assert rows[0]["margin"] < 0 and rows[0]["t"] == max(r["t"] for r in rows)
    assert {"margin", "n_eff", "distance_to_centre", "network_margin", "network_residual_eps"} <= set(rows[0])
    # the gate's residual (eps units) is a norm: finite and non-negative wherever the network was probed
    probed = [r for r in rows if np.isfinite(r["network_margin"])]
    assert probed and all(np.isfinite(r["network_residual_eps"]) and r["network_residual_eps"] >= 0 for r in probed)
    for key in ("network_crossing_t", "gaussian_prediction_t", "gli_critical_start_t", "verdict", "gate_passed"):
        assert key in summary
    assert summary["verdict"] in ("confirmed", "refuted", "not testable with this network")
    starts = [r["t_start"] for r in gl_rows]
    assert starts == sorted(starts) and len(starts) == 4
    assert summary["gli_critical_start_t"] in starts[1:-1]


def test_network_regime_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    rows, summary = _load("network_regime").main(["--quick", "--out", str(tmp_path), "--runs", str(tmp_path)])
    assert (tmp_path / "network_regime_quick.png").is_file()
    table = list(csv.DictReader(open(tmp_path / "network_regime_quick.csv")))
    assert {r["network"] for r in table} == {"copy-eps", "copy-x0", "copy-edm", "small-conditional"}
    # every network gets one regime per time, from the documented vocabulary
    for net in summary["networks"].values():
        assert len(net["regime"]) == 3 and set(net["regime"]) <= set(__import__("statphys_diffusion").REGIMES)
    # the distance of any network to a reference and its relative errors are non-negative
    assert all(float(r["distance_train"]) >= 0 and float(r["mse_held"]) >= 0 for r in table)


def _fake_result(n, mem, spur, *, regime="mixed", rec_spur=5.0, rec_mem=50.0, half_width=0.02):
    mod = _load("network_memorization")
    regimes = ["memorising" if mem > 0.5 else regime] * len(mod.REGIME_TIMES)
    rec = {
        k: {"n": 5, "median": v, "q25": v, "q75": v, "bracketed": 1.0, "t_lo": 1.0}
        for k, v in (("memorized", rec_mem), ("spurious", rec_spur), ("generalized", 1.0))
    }
    return {
        "N": n,
        "memorized_pixels": mem,
        "spurious_pixels": spur,
        "spurious_pixels_lo": max(0.0, spur - half_width),
        "spurious_pixels_hi": spur + half_width,
        "regime": {"regime": regimes},
        "recovery": rec,
    }


def test_network_memorization_verdict_follows_the_stated_criterion():
    mod = _load("network_memorization")
    assert [mod.lattice(j) for j in range(4, 12)] == [4, 6, 8, 11, 16, 23, 32, 45]
    mems = {8: 0.9, 11: 0.7, 16: 0.3, 23: 0.1, 32: 0.0}
    cross = mod._crossing(mems)
    assert 11 < cross < 16
    # a spurious peak at the crossing with recovery times between: confirmed
    peak = {8: 0.0, 11: 0.05, 16: 0.2, 23: 0.05, 32: 0.0}
    res = [_fake_result(n, mems[n], peak[n]) for n in mems]
    assert mod.verdict(res, cross)["verdict"] == "confirmed"
    # the peak one lattice step too far (x 2 from the crossing): refuted
    far = {8: 0.0, 11: 0.05, 16: 0.05, 23: 0.05, 32: 0.2, 45: 0.0}
    res_far = [_fake_result(n, {**mems, 45: 0.0}[n], far[n]) for n in far]
    assert mod.verdict(res_far, cross)["verdict"] == "refuted"
    # spurious samples recovered from more noise than memorised ones: refuted
    res_rec = [_fake_result(n, mems[n], peak[n], rec_spur=80.0) for n in mems]
    assert mod.verdict(res_rec, cross)["criteria"]["spurious_recovery_between"] is False
    assert mod.verdict(res_rec, cross)["verdict"] == "refuted"
    # the largest network not converged: not testable, whatever the fractions
    res_nc = [_fake_result(n, mems[n], peak[n], regime="not converged") for n in mems]
    assert mod.verdict(res_nc, cross)["verdict"] == "not testable with this network"


def test_geometric_synthetic_block_fractions_are_one_for_the_gaussian_of_the_variances():
    mod = _load("geometric_synthetic")
    import statphys_diffusion as sd

    lam = np.random.default_rng(0).uniform(0.01, 0.3, mod.D)
    sch = sd.VarianceExploding(sigma_max=mod.SIGMA_MAX)
    gauss = sd.GaussianMixture.diagonal(np.zeros((1, mod.D)), lam[None, :], schedule=sch)
    times = mod.analysis_times(5)
    x0 = mod.make_data(3, np.random.default_rng(1))
    fr = mod.block_fractions(gauss, times, x0, lam, np.random.default_rng(2))
    # J_kk = lam_k / (lam_k + sigma^2) for the Gaussian: the ratio is 1 up to the Hessian products' rounding
    for v in fr.values():
        np.testing.assert_allclose(v, 1.0, rtol=1e-6)


def test_geometric_synthetic_loss_time_and_verdict():
    mod = _load("geometric_synthetic")
    t = np.array([10.0, 1.0, 0.1, 0.01])
    assert mod.loss_time(t, [1.0, 0.9, 0.8, 0.7]) == 0.0  # never below 1/2: not lost
    assert mod.loss_time(t, [0.2, 0.1, 0.1, 0.1]) == 10.0
    # halfway between 1 and 0.1 in log t when rho goes 0.75 -> 0.25
    assert np.isclose(mod.loss_time(t, [1.0, 0.75, 0.25, 0.0]), np.sqrt(0.1))

    # restricted to sigma <= 1 (GATE_SIGMA): a dip at sigma = 10 is not a loss
    assert mod.loss_time(t, [0.2, 0.9, 0.9, 0.9], sigma_max=1.0) == 0.0
    # 0.9 -> 0.25 between sigma = 1 and 0.1: rho = 1/2 at w = 0.4 / 0.65 of the way in log sigma
    assert np.isclose(mod.loss_time(t, [0.2, 0.9, 0.25, 0.1], sigma_max=1.0), 0.1 ** (0.4 / 0.65))

    times = [10.0, 1.0, 0.3, 0.1, 0.03, 0.01]

    def curve(lost_below):
        """rho 0.9 above ``lost_below`` (a grid time or None) and 0.1 from it down, with noise at sigma = 10."""
        return [0.1] + [0.1 if lost_below is not None and x <= lost_below else 0.9 for x in times[1:]]

    def res(n, t1, t2):
        out = {"N": n, "times": times}
        for s in ("network_train", "empirical_train", "predicted"):
            for b, tb in (("std1", t1), ("std0.3", t2)):
                out[f"{s}_{b}_rho"] = curve(tb)
                out[f"{s}_{b}_loss_t"] = 10.0 if s != "predicted" else (tb or 0.0)  # whole range: the sigma = 10 dip
        return out

    check = res(500, None, None)
    ok = [res(250, 0.3, 0.03), res(500, 0.1, 0.03), res(2000, 0.03, None), res(20000, None, None)]
    # 0.9 -> 0.1 between sigma = 1 and 0.3: halfway in log sigma
    assert np.isclose(mod.restricted_loss_time(ok[0], "network_train", "std1"), np.sqrt(0.3))
    assert mod.restricted_loss_time(ok[0], "predicted", "std0.3") == 0.03  # the prediction's own, unchanged
    # the 1x (N = 500 of ok) and 3x (check) curves differ at sigma = 0.1 by 0.8: not converged
    assert mod.verdict(ok, check)["verdict"] == "not testable with this network"
    converged = res(500, 0.1, 0.03)
    v = mod.verdict(ok, converged)
    assert v["verdict"] == "confirmed" and v["gate"]["max_rho_difference_1x_3x"] == 0.0
    rev = [res(250, 0.03, 0.3), res(500, 0.03, 0.1), res(2000, None, 0.03), res(20000, None, None)]
    assert mod.verdict(rev, res(500, 0.03, 0.1))["verdict"] == "refuted"
    # a difference only at sigma > 1 does not fail the gate; it is recorded over the whole range
    far = dict(converged, **{"network_train_std1_rho": [0.9] + curve(0.1)[1:]})
    v = mod.verdict(ok, far)
    assert v["gate"]["converged"] and v["gate"]["max_rho_difference_1x_3x_all_sigma"] == 0.8
    assert v["verdict"] == "confirmed"


def test_geometric_synthetic_quick(tmp_path):
    pytest.importorskip("torch")
    mod = _load("geometric_synthetic")
    out = mod.main(["--quick", "--out", str(tmp_path), "--runs", str(tmp_path)])
    assert (tmp_path / "geometric_synthetic_quick.png").is_file()
    rows = list(csv.DictReader(open(tmp_path / "geometric_synthetic_quick.csv")))
    # the 3x convergence run comes first (with two workers it overlaps the others)
    assert [int(r["N"]) for r in rows] == [50, 50, 200] and [int(r["steps"]) for r in rows] == [600, 200, 200]
    curves = list(csv.DictReader(open(tmp_path / "geometric_synthetic_curves_quick.csv")))
    assert len(curves) == 3 * 5 * 2 * 6  # runs x sources x blocks x times
    # --exact-only regenerates the exact model's and the prediction's columns without training:
    # the same numbers as the full run (same queries, same generator state; float64 throughout)
    again = mod.main(["--quick", "--exact-only", "--out", str(tmp_path / "exact"), "--ref", str(tmp_path)])
    assert again["loss_t_max_abs_diff"] == 0.0 and again["rho_max_abs_diff"] == 0.0
    assert (tmp_path / "exact" / "geometric_synthetic_exact_only_quick.csv").is_file()
    # --recheck remeasures one N (here from the run's cache) and compares every column
    rc = mod.main(["--quick", "--recheck", "200", "--runs", str(tmp_path), "--ref", str(tmp_path)])
    assert rc["N"] == [200] and rc["exact"]["rho_max_abs_diff"] == 0.0 and rc["network"]["rho_max_abs_diff"] == 0.0
    assert set(out["post_hoc"]) >= {"check_3x", "500", "200"}
    assert out["gate"]["sigma_max"] == 1.0
    assert out["verdict"] in (
        "confirmed",
        "refuted",
        "neither (mixed orders or nothing lost)",
        "not testable with this network",
    )
    # the exact empirical model of 50 points has lost both blocks at the smallest sigma (0.01) at its training points
    assert (
        float(rows[1]["empirical_train_std1_loss_t"]) > 0.01 and float(rows[1]["empirical_train_std0.3_loss_t"]) > 0.01
    )


def test_compare_outputs_finds_real_differences_and_ignores_rounding_and_timing(tmp_path):
    cmp = _load("compare_outputs")
    ref, new = tmp_path / "ref", tmp_path / "new"
    ref.mkdir()
    new.mkdir()
    header = "problem,method,value,seconds\n"
    (ref / "thing.csv").write_text(header + "1d,a,1.0,3.0\n1d,b,,4.0\n2d,a,2.0,5.0\n")
    # rounding-level change, a different wall-clock time and NaN = NaN: agrees
    (new / "thing.csv").write_text(header + "1d,a,1.0000000000001,9.0\n1d,b,,1.0\n2d,a,2.0,0.5\n")
    assert cmp.main([str(new), "--ref", str(ref)]) == 0
    # a part's file is held against the matching rows of the whole-run file
    (new / "thing.csv").unlink()
    (new / "thing_2d.csv").write_text(header + "2d,a,2.0,0.1\n")
    assert cmp.main([str(new), "--ref", str(ref)]) == 0
    # a real change, a NaN where there was a number, a changed label, a missing namesake: each fails
    for row in ("2d,a,2.001,0.1\n", "2d,a,,0.1\n", "2d,c,2.0,0.1\n"):
        (new / "thing_2d.csv").write_text(header + row)
        assert cmp.main([str(new), "--ref", str(ref)]) == 1
    (new / "thing_2d.csv").unlink()
    (new / "other.csv").write_text(header + "1d,a,1.0,1.0\n")
    assert cmp.main([str(new), "--ref", str(ref)]) == 1
    # an empty text cell on both sides agrees; empty against a label does not
    (new / "other.csv").unlink()
    (ref / "notes.csv").write_text("model,note,value\nx,,1.0\ny,flat,2.0\n")
    (new / "notes.csv").write_text("model,note,value\nx,,1.0\ny,flat,2.0\n")
    assert cmp.main([str(new / "notes.csv"), "--ref", str(ref)]) == 0
    (new / "notes.csv").write_text("model,note,value\nx,flat,1.0\ny,flat,2.0\n")
    assert cmp.main([str(new / "notes.csv"), "--ref", str(ref)]) == 1


def test_network_symmetry_figure_draws_fine_rows_from_memory_and_from_files(tmp_path):
    """The full run's refinement rows (grid "fine") name the exact margin "exact_margin"; the quick
    run never refines, so the figure is drawn here from the committed full-run files."""
    pytest.importorskip("matplotlib")
    import shutil

    mod = _load("network_symmetry")
    figures = Path(__file__).resolve().parents[1] / "figures"
    for name in ("network_symmetry.csv", "network_symmetry.json", "network_gli.csv"):
        shutil.copy(figures / name, tmp_path / name)
    mod.replot(tmp_path)  # from the files
    assert (tmp_path / "network_symmetry.png").is_file()
    committed = [dict(r) for r in csv.DictReader(open(tmp_path / "network_symmetry.csv"))]
    import json

    rows = [dict(r) for r in csv.DictReader(open(tmp_path / "network_symmetry.csv"))]
    assert any(r["grid"] == "fine" for r in rows)
    for r in rows:  # as main() holds them: numbers, and fine rows without a "margin" key
        for k in list(r):
            if k != "grid":
                r[k] = float(r[k]) if r[k] != "" else float("nan")
        if r["grid"] == "fine":
            del r["margin"]
    gl = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(tmp_path / "network_gli.csv"))]
    summary = json.loads((tmp_path / "network_symmetry.json").read_text())
    branch = mod._branch_from_rows(rows, summary)
    mod._plot(branch, rows, gl, summary, tmp_path / "from_memory.png")
    assert (tmp_path / "from_memory.png").is_file()
    # the exact margins drawn are the file's numbers, one per row (coarse: margin, fine: exact_margin)
    want = [float(r["margin"] or r["exact_margin"]) for r in committed]
    np.testing.assert_array_equal(mod._exact_margins(rows), want)


def test_network_symmetry_probe_skips_lost_points_and_measures_the_gate_residual():
    from types import SimpleNamespace

    mod = _load("network_symmetry")
    from statphys_diffusion.report import SCHEDULES

    sch = SCHEDULES["ddpm-linear"]()

    class Stub:  # score s(x) = -x; the top Jacobian eigenvalue 0.5 wherever asked
        schedule = sch

        def jacobian_spectrum(self, x, t, k=1, tol=1e-4):
            return np.array([0.5])

        def score(self, x, t):
            return -np.asarray(x)

    d = 12
    pts = np.full((3, d), 0.3)
    branch = SimpleNamespace(times=np.array([700.0, 600.0, 500.0]), margin=np.array([-0.1, np.nan, -0.2]), points=pts)
    margin, rel, eps = mod._probe(Stub(), branch)
    assert np.isnan(margin[1]) and np.isnan(rel[1]) and np.isnan(eps[1])  # the lost point is not probed
    for i in (0, 2):
        t = float(branch.times[i])
        a = float(mod.th.stiffness(sch, t, "sde"))
        resid = np.linalg.norm(a * pts[i] - pts[i])
        assert rel[i] == pytest.approx(resid / np.linalg.norm(a * pts[i]), rel=1e-12)
        assert eps[i] == pytest.approx(float(sch.sigma(t)) * resid / np.sqrt(d), rel=1e-12)
        lam_h = (float(sch.alpha(t)) * 0.5 - 1.0) / float(sch.sigma2(t))
        assert margin[i] == pytest.approx(lam_h + a, rel=1e-12)
