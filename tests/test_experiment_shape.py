"""The experiment shape of validation/ (pre-registration, verdict vocabulary with bootstrap stability,
provenance) and the generalisation test's decision rule on synthetic r^2 whose answer is known; its
quick mode end to end (needs CIFAR-10)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    sys.path.insert(0, str(ROOT / "validation"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _r2(rng, **medians):
    """200 per-sample r^2 values per model around the given medians (spread 0.05)."""
    models = ("empirical", "gaussian", "LS", "ELS", "PSPC", "locality", "composite")
    return {m: np.clip(medians.get(m, 0.5) + 0.05 * rng.standard_normal(200), -1, 1) for m in models}


def test_the_decision_rule_can_confirm_refute_and_say_partly():
    gen = _load("generalisation")
    rng = np.random.default_rng(0)
    assert gen.decision(_r2(rng, ELS=0.9))[0] == "confirmed"
    assert gen.decision(_r2(rng, gaussian=0.9))[0] == "refuted"
    assert gen.decision(_r2(rng, empirical=0.95, LS=0.6))[0] == "refuted"
    # a local model best but below 0.8: partly; tied with the Gaussian: partly
    assert gen.decision(_r2(rng, ELS=0.7))[0] == "partly"
    assert gen.decision(_r2(rng, ELS=0.9, gaussian=0.9))[0] == "partly"


def test_generalisation_median_differences_resolve_a_gap_and_not_a_tie():
    gen = _load("generalisation")
    r2 = _r2(np.random.default_rng(3), locality=0.8, gaussian=0.8, empirical=0.1)
    diff = gen.median_differences(r2, n_boot=500)
    assert set(diff) == {f"{a} - {b}" for a in gen.LOCAL for b in ("gaussian", "empirical")}
    tie, gap = diff["locality - gaussian"], diff["locality - empirical"]
    # spread 0.05 over 200 samples puts the tie's interval at about +-0.012 (a 1-in-20 miss: the seed is fixed)
    assert tie["ci"][0] < 0 < tie["ci"][1] and tie["ci"][1] - tie["ci"][0] < 0.05
    assert gap["ci"][0] > 0.6 and gap["difference"] == pytest.approx(
        np.median(r2["locality"]) - np.median(r2["empirical"])
    )


def test_a_verdict_on_a_knife_edge_is_inconclusive():
    ex = _load("_experiment")
    rng = np.random.default_rng(1)
    data = rng.standard_normal(100)
    data -= data.mean()  # the rule's statistic sits exactly on its threshold

    def rule(x):  # decided by the sign of the mean of noise: about half the resamples disagree
        return ("confirmed", "mean > 0") if np.mean(x) > 0 else ("refuted", "mean <= 0")

    def resample(x, g):
        return x[g.integers(0, x.size, x.size)]

    v = ex.decide(rule, data, resample, n_resamples=200, rng=2)
    assert v.outcome == "inconclusive" and v.stability < ex.STABILITY_FLOOR
    clear = ex.decide(rule, data + 3.0, resample, n_resamples=200, rng=2)
    assert clear.outcome == "confirmed" and clear.stability == 1.0
    with pytest.raises(ValueError, match="outcome"):
        ex.Verdict("maybe", "", 1.0, 0)


def test_a_full_run_needs_a_committed_preregistration(tmp_path, monkeypatch):
    ex = _load("_experiment")
    monkeypatch.setattr(ex, "PREREGISTRATIONS", tmp_path)
    with pytest.raises(SystemExit, match="no pre-registration"):
        ex.preregistration("nothing", require_committed=True)
    (tmp_path / "draft.md").write_text("claims")
    with pytest.raises(SystemExit, match="not committed"):
        monkeypatch.setattr(ex, "ROOT", tmp_path)
        ex.preregistration("draft", require_committed=True)
    path, digest = ex.preregistration("draft", require_committed=False)
    assert len(digest) == 64
    prov = ex.provenance({"a": 1}, digest, 1.234)
    assert prov["preregistration_sha256"] == digest and prov["config"] == {"a": 1} and prov["seconds"] == 1.2


def test_generalisation_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    gen = _load("generalisation")
    argv = ["--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--cache", str(tmp_path / "jobs")]
    summary = gen.main(argv)
    n_jobs = len(list((tmp_path / "jobs").glob("*.json")))
    # calibration per (model, level), samples per batch, MSE per model, the network's checks
    assert n_jobs == 4 * 2 + 7 * 2 + 6 + 1
    again = gen.main(argv)  # every job from the cache: the same numbers
    assert len(list((tmp_path / "jobs").glob("*.json"))) == n_jobs
    assert again["networks"][0]["models"]["ELS"] == summary["networks"][0]["models"]["ELS"]
    saved = json.loads((tmp_path / "generalisation.json").read_text())
    assert saved["provenance"]["preregistration_sha256"] == summary["provenance"]["preregistration_sha256"]
    net = saved["networks"][0]
    assert set(net["models"]) == {"empirical", "gaussian", "LS", "ELS", "PSPC", "locality", "composite"}
    assert net["verdict"]["outcome"] in ("confirmed", "refuted", "partly", "inconclusive", "not testable")
    for name in ("generalisation.csv", "generalisation_mse.csv", "generalisation_r2.png", "generalisation_purpose.png"):
        assert (tmp_path / name).is_file()
    # --jobs-only fills the cache and writes nothing (other networks' outputs stay as they are)
    other = tmp_path / "other"
    assert gen.main([*argv[:1], "--out", str(other), *argv[3:], "--jobs-only"]) == {}
    assert not list(other.glob("*"))


def _late_data(ts, gli_means, full_mean=5.0, spread=0.05, seeds=3, rng=None):
    """FD_own tables with a known answer: each cell's bootstrap spread ``spread`` (so the standard error of a
    mean over seeds is spread / sqrt(seeds))."""
    rng = np.random.default_rng(0) if rng is None else rng
    gli = np.array(gli_means)[:, None] + spread * rng.standard_normal((len(ts), seeds))
    full = full_mean + spread * rng.standard_normal(seeds)
    boot_gli = gli[..., None] + spread * rng.standard_normal((len(ts), seeds, 200))
    boot_full = full[:, None] + spread * rng.standard_normal((seeds, 200))
    ls = _load("late_start")
    return {"starts": np.array(ts, dtype=float), "gli": gli, "full": full, "se_gli": ls.stderr_of_mean(boot_gli),
            "se_full": float(ls.stderr_of_mean(boot_full))}  # fmt: skip


def test_the_late_start_threshold_rule_and_decision():
    ls = _load("late_start")
    import statphys_diffusion as sd

    sch = sd.DiscreteSchedule.linear(1000)
    cfg = ls.FULL
    ts = ls.starts(cfg, sch)
    # the pre-registered grid: 12 starts, multiples of 5, from 990 to 60
    assert ts.size == 12 and ts[0] == 990 and ts[-1] == 60 and np.all(ts % 5 == 0)
    lo, hi = ls.window(cfg, sch)
    assert lo < float(sch.log_snr(702.48)) < float(sch.log_snr(626.99)) < hi
    # the bootstrap standard error of a mean over 3 seeds: spread / sqrt(3)
    boot = 0.3 * np.random.default_rng(1).standard_normal((3, 4000))
    assert abs(float(ls.stderr_of_mean(boot)) - 0.3 / np.sqrt(3)) < 0.01

    def rule(data):
        return ls.critical_start(ts, data["gli"], data["full"], cfg.k, data["se_gli"], data["se_full"])

    # quality lost from t = 530 on (later starts): t* = 625, inside the window -> confirmed
    lost = _late_data(ts, [5.0 if t >= 600 else 9.0 for t in ts])
    t_star, z = rule(lost)
    assert t_star == 625.0 and z[ts == 530][0] > 3
    assert ls.decide(lost, cfg, sch)[0] == "confirmed"
    # never lost (the exact Gaussian): t* = 60, outside -> refuted; lost at once: t* undefined -> refuted
    assert rule(_late_data(ts, [5.0] * 12))[0] == 60.0
    assert ls.decide(_late_data(ts, [5.0] * 12), cfg, sch)[0] == "refuted"
    assert ls.decide(_late_data(ts, [9.0] * 12), cfg, sch)[0] == "refuted"
    # a recovery after a loss does not move t* later: the first loss from early starts decides
    wiggle = _late_data(ts, [5.0 if t >= 600 else (9.0 if t == 530 else 5.0) for t in ts])
    assert rule(wiggle)[0] == 625.0


# .ci/run runs it in its separate slow selection (the default run stays under 5 minutes on 2 cores)
@pytest.mark.slow
def test_late_start_quick(tmp_path):
    pytest.importorskip("torch")
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    ls = _load("late_start")
    summary = ls.main(["--quick", "--out", str(tmp_path), "--cache", str(tmp_path / "jobs")])
    saved = json.loads((tmp_path / "late_start_quick.json").read_text())
    assert saved["verdict"]["outcome"] in ("confirmed", "refuted", "partly", "inconclusive", "not testable")
    assert saved["provenance"]["config"]["mode"] == "quick" and len(saved["starts"]) == 3
    # full chain and (gli, control) x 3 starts, 2 seeds each
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 2 + 2 * 3 * 2
    assert (tmp_path / "late_start_quick.png").is_file() and (tmp_path / "late_start_quick.csv").is_file()
    assert summary["gates"]["G1_control_excess_se"] == saved["gates"]["G1_control_excess_se"]


def test_entropy_replication_power_rule_on_known_peaks():
    er = _load("entropy_replication")
    # two seeds, four classes; the largest separation is classes 0 and 3 (300 steps), s.e. 40 each at 400
    # draws per class: 3 combined s.e. = 3 * 40 * sqrt(2) = 170 -> (170 / 300)^2 * 400 = 128.0 -> 128 chains
    seeds = [{"class": {"log_snr_peak_time": [100.0, 200.0, 250.0, 400.0], "log_snr_peak_time_stderr": [40.0] * 4}}] * 2
    p = er.power_rule(seeds, n_draws=1600, z=3.0)
    assert p["classes"] == ["automobile", "dog"] and p["separation_t"] == 300.0
    assert p["chains_per_class"] == int(np.ceil(400 * (3 * 40 * np.sqrt(2) / 300) ** 2))
    # 80% power: the separation expected at 3 + 0.8416 s.e.; by simulation, the share of draws of the
    # separation (mean 300, s.e. scaled to that count) above 3 of their s.e. is 0.8
    n = er.chains_for_power(p)
    assert n == int(np.ceil(400 * ((3 + 0.8416212335729143) * 40 * np.sqrt(2) / 300) ** 2))
    se = 40 * np.sqrt(2) * np.sqrt(400 / n)
    draws = np.random.default_rng(0).normal(300.0, se, 200_000)
    assert np.mean(draws > 3 * se) == pytest.approx(0.8, abs=0.005)  # n rounded up: at least 0.8, barely


# .ci/run runs it in its separate slow selection (the default run stays under 5 minutes on 2 cores)
@pytest.mark.slow
def test_entropy_replication_reference_check_quick(tmp_path, monkeypatch):
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    er = _load("entropy_replication")
    out = er.main(["--reference-check", "--quick", "--out", str(tmp_path / "r.json"), "--runs", str(tmp_path)])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert len(saved["class_gaussian"]["coarse_first_margin_t"]) == er.QUICK.seeds
    assert saved["power"]["chains_per_class"] == out["power"]["chains_per_class"] > 0
    # the full measurement refuses before the network is trained (rather than train it inside a job)
    monkeypatch.setattr(er._networks, "committed_weights", lambda cfg: tmp_path / "absent.fp16.pt")
    with pytest.raises(SystemExit, match="--train-only first"):
        er.main(["--runs", str(tmp_path)])


def test_entropy_replication_jobs_keep_exactly_what_the_entropy_rate_reads():
    # a job keeps a thinned track, packed as base64 float64; merged back, its entropy rate (coarse=1) must be
    # the full track's entropy rate at coarse=5, bit for bit, and splitting the chains over two jobs must give
    # the concatenated track
    import statphys_diffusion as sd

    er = _load("entropy_replication")
    sch = sd.DiscreteSchedule.linear(1000)
    means = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    gm = sd.GaussianMixture.isotropic(means, 0.3, labels=np.arange(4), schedule=sch)
    track = sd.OnlineClassifier(60).run(gm, n=6, classes=np.arange(4), chains="joint", rng=np.random.default_rng(0))
    full = track.entropy_rate(sch, coarse=5, n_bootstrap=30, rng=1)
    th = er.thin(track, sch, 5)
    part = {"times": th.times.tolist(), "log_posterior": er._pack(th.log_posterior), "labels": th.labels.tolist()}
    back = er.merge([json.loads(json.dumps(part))], np.arange(4))
    again = back.entropy_rate(sch, coarse=1, n_bootstrap=30, rng=1)
    for name in ("times", "entropy", "rate", "log_snr_rate", "peak_time", "log_snr_peak_time", "class_counts"):
        np.testing.assert_array_equal(getattr(again, name), getattr(full, name), err_msg=name)
    np.testing.assert_array_equal(np.argmax(back.log_posterior[-1], 1), np.argmax(track.log_posterior[-1], 1))
    # two jobs: the first 12 and the last 12 chains
    halves = [dict(part, log_posterior=er._pack(th.log_posterior[:, s]), labels=th.labels[s].tolist())
              for s in (slice(0, 12), slice(12, 24))]  # fmt: skip
    np.testing.assert_array_equal(er.merge(halves, np.arange(4)).log_posterior, th.log_posterior)
    with pytest.raises(ValueError, match="different grids"):
        er.merge([part, dict(part, times=(np.asarray(part["times"]) + 1).tolist())], np.arange(4))


def test_entropy_replication_decision_rule_and_total_peak_error():
    import statphys_diffusion as sd

    er = _load("entropy_replication")
    yes = {"interior_peak": True, "classes_apart": True, "coarse_first": True}
    assert er.criteria_outcome(yes)[0] == "confirmed"
    assert er.criteria_outcome({k: False for k in yes})[0] == "refuted"
    outcome, reason = er.criteria_outcome(dict(yes, coarse_first=False))
    assert outcome == "partly" and "fails: (c) coarse first" in reason
    # the total peak's bootstrap error shrinks about as 1 / sqrt(chains)
    sch = sd.DiscreteSchedule.linear(1000)
    means = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    gm = sd.GaussianMixture.isotropic(means, 0.3, labels=np.arange(4), schedule=sch)
    ses = []
    for n in (8, 72):
        tr = sd.OnlineClassifier(50).run(gm, n=n, classes=np.arange(4), chains="joint", rng=np.random.default_rng(n))
        ses.append(er._total_peak_stderr(er.thin(tr, sch, 1), sch, 200, np.random.default_rng(0)))
    assert ses[1] < ses[0]


def test_entropy_replication_verdict_on_an_exact_hierarchy():
    # an exact four-class mixture in which vehicles and animals separate early (far apart) and each fine
    # pair late (close): the rule runs on its joint track with gates passed, and a failed gate stops it
    import statphys_diffusion as sd

    er = _load("entropy_replication")
    sch = sd.DiscreteSchedule.linear(1000)
    means = np.array([[-3.0, 0.3, 0.0], [-3.0, -0.3, 0.0], [3.0, 0.0, 0.3], [3.0, 0.0, -0.3]])
    gm = sd.GaussianMixture.isotropic(means, 0.05, labels=np.arange(4), schedule=sch)
    track = sd.OnlineClassifier(100).run(gm, n=40, classes=np.arange(4), chains="joint", rng=np.random.default_rng(3))
    joint = er.thin(track, sch, 2)
    ok = {"G1_passes": True, "G2_passes": True, "G3_passes": True}
    v = er.decide(joint, ok, sch, n_bootstrap=50, n_resamples=20)
    s = er.summaries(joint, sch, 50, np.random.default_rng(0))
    fine = max(s[p]["total_log_snr_peak_time"] for p in ("vehicle", "animal"))
    assert s["superclass"]["total_log_snr_peak_time"] > fine
    # (a) and (c) hold; (b) cannot: the mixture is symmetric, so every class peaks at the same time
    assert v.outcome == "partly" and "fails: (b) classes apart" in v.reason and v.n_resamples == 20
    stopped = er.decide(joint, dict(ok, G2_passes=False), sch, n_bootstrap=50, n_resamples=20)
    assert stopped.outcome == "not testable" and "G2" in stopped.reason


@pytest.mark.slow
def test_entropy_replication_measurement_quick(tmp_path):
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    er = _load("entropy_replication")
    runs, out = tmp_path / "runs", tmp_path / "out"
    summary = er.main(["--quick", "--runs", str(runs), "--out", str(out)])
    saved = json.loads((out / "entropy_replication_quick.json").read_text())
    assert saved["verdict"]["outcome"] in ("confirmed", "refuted", "partly", "inconclusive", "not testable")
    assert saved["verdict"] == summary["verdict"]
    assert set(saved["gates"]) >= {"G1_passes", "G2_passes", "G3_passes", "G2_by_time"}
    assert len(saved["gates"]["G2_by_time"]) == len(er.FLOW_QUICK["times"])
    assert saved["chains_per_class"]["joint"] == er.MEASURE_QUICK.chains_per_job
    assert saved["provenance"]["preregistration_sha256"]
    for prob in ("class", "superclass", "vehicle", "animal"):
        assert np.isfinite(saved["network_joint"][prob]["total_log_snr_peak_time_stderr"])
    assert (out / "entropy_replication_quick.png").is_file() and (out / "entropy_replication_quick.csv").is_file()


def test_spurious_samples_rules_on_known_answers():
    ss = _load("spurious_samples")
    # the crossing, linear in log N: memorised 0.75 at 16 and 0.25 at 64 cross at 32
    assert ss.crossing([16, 64], [0.75, 0.25]) == pytest.approx(32.0)
    assert ss.crossing([16, 64], [0.4, 0.2]) is None
    peak = {"N": [23, 32, 45, 64], "memorized": [0.8, 0.55, 0.3, 0.1], "spurious": [0.15, 0.3, 0.4, 0.2], "n": 2000}
    assert ss.replication_rule(peak)[0] == "confirmed"
    # the crossing moved out of the window (N_c about 60) and the peak at the largest N: refuted
    late = dict(peak, memorized=[0.9, 0.8, 0.7, 0.45], spurious=[0.05, 0.1, 0.2, 0.3])
    assert ss.replication_rule(late)[0] == "refuted"
    # the crossing inside, but the peak not above N = 64 within the intervals: partly
    flat = dict(peak, spurious=[0.15, 0.3, 0.31, 0.3])
    assert ss.replication_rule(flat)[0] == "partly"


def test_spurious_samples_return_classification():
    ss = _load("spurious_samples")
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    starts = np.array([[5.5, 0.0], [1.5, 0.0]])  # nearest training images: 1 and 0
    # start 0 (a mixture state): returns to itself, to training image 1, far away; start 1 (a halo of 0):
    # returns to training image 0 (its nearest), to itself (1.5 from 0: within delta of image 0, so "training image")
    returns = np.array([[[5.7, 0.0], [9.9, 0.0], [5.5, 4.0]], [[0.1, 0.0], [1.4, 0.0], [3.1, 0.0]]])
    c = ss.classify_returns(returns, starts, train, delta=2.0)
    assert c["label"].tolist() == [["itself", "training image", "elsewhere"],
                                   ["training image", "training image", "itself"]]  # fmt: skip
    assert c["train_index"].tolist() == [[-1, 1, -1], [0, 0, -1]]
    assert c["to_nearest"].tolist() == [[False, True, False], [True, True, False]]


# .ci/run runs it in its separate slow selection (the default run stays under 5 minutes on 2 cores)
@pytest.mark.slow
def test_spurious_samples_quick(tmp_path):
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    ss = _load("spurious_samples")
    summary = ss.main(["--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "spurious_samples_quick.json").read_text())
    assert saved["verdict"] == summary["verdict"]
    assert set(saved["fractions"]) == {"0", "1"} and saved["fractions"]["1"]["N"] == list(ss.QUICK.ns)
    # the threshold table: every network at both ratios
    assert len(saved["threshold_table"]) == len(ss.QUICK.ns) * len(ss.QUICK.seeds) * len(ss.QUICK.ratios)
    assert saved["part_B"]["call"] in ("halos of one image", "attractors of their own", "mixed", "not testable",
                                       "not testable (no spurious samples)")  # fmt: skip
    for name in ("spurious_samples_quick.png", "spurious_samples_quick.csv", "spurious_samples_quick_returns.csv"):
        assert (tmp_path / name).is_file()


def test_dimension_twins_rule_closes_narrows_or_not():
    dt = _load("dimension_twins")
    cfg = dt.FULL

    def med(**by_budget):  # budget -> (edm, eps, x0) at every t
        return {b: {tw: {str(t): v[i] for t in cfg.times} for i, tw in enumerate(dt.TWINS)}
                for b, v in zip(cfg.budgets, by_budget.values())}  # fmt: skip

    assert dt.spread([10.0, 10.0, 10.0]) == 0.0 and dt.spread([0.0, 0.0, 30.0]) == pytest.approx(3.0)
    call, reason, _ = dt.decide(med(a=(300, 280, 0), b=(100, 97, 95), c=(20, 20, 19)), cfg)
    assert call == "closes" and "budget 16000" in reason
    assert dt.decide(med(a=(300, 280, 0), b=(200, 150, 0), c=(100, 80, 10)), cfg)[0] == "narrows"
    assert dt.decide(med(a=(300, 280, 0), b=(300, 280, 0), c=(300, 280, 0)), cfg)[0] == "does not close"


@pytest.mark.slow
def test_dimension_twins_quick(tmp_path):
    from statphys_diffusion import datasets

    if datasets.find_cifar10() is None:
        pytest.skip("CIFAR-10 not found")
    dt = _load("dimension_twins")
    summary = dt.main(["--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "dimension_twins_quick.json").read_text())
    assert saved["call"] == summary["call"] in ("closes", "narrows", "does not close")
    # every twin at every budget: a weights file of its own, the later ones continued from the earlier
    assert len(set(saved["weights"].values())) == len(dt.TWINS) * len(dt.QUICK.budgets)
    assert (tmp_path / "dimension_twins_quick.png").is_file()


def test_geometric_order_rule_gate_and_ties():
    go = _load("geometric_order")
    gs = go.gs

    def curve(loss1, loss2):  # each block's rho below 1/2 under its loss sigma (lost at smaller noise)
        times = gs.analysis_times(200)
        return {"times": times.tolist(),
                **{f"network_train_{b}_rho": np.where(times < s, 0.2, 0.9).tolist()
                   for b, s in zip(gs.BLOCKS, (loss1, loss2))}}  # fmt: skip

    first, tied = curve(0.5, 0.1), curve(0.2, 0.21)
    assert go.order(first) == "std1 first" and go.order(curve(0.1, 0.5)) == "std0.3 first"
    assert go.order(tied) == "tied" and go.order(curve(0.0, 0.0)) == "none lost"
    assert go.gate(first, curve(0.45, 0.1))["passes"]
    assert not go.gate(first, curve(0.3, 0.1))["passes"]  # std-1 loss sigma moved by 40%
    assert not go.gate(first, tied)["passes"]
    assert go.decide({"250": "std1 first", "500": "std1 first"})[0] == "confirmed"
    assert go.decide({"250": "std0.3 first", "500": "std0.3 first"})[0] == "refuted"
    assert go.decide({"250": "std1 first", "500": "tied"})[0] == "partly"


@pytest.mark.slow
def test_geometric_order_quick(tmp_path):
    go = _load("geometric_order")
    summary = go.main(["--quick", "--workers", "1", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "geometric_order_quick.json").read_text())
    assert saved["verdict"] == summary["verdict"] and set(saved["gates"]) == {"250"}
    # the snapshot was written by the callback at the stated step, and the run finished
    st = go.main(["--quick", "--status", "--runs", str(tmp_path / "runs")])
    assert st[250] == {"steps_done": go.QUICK.steps, "committed_copy": 0, "of": go.QUICK.steps,
                       "snapshot_written": True}  # fmt: skip


def test_geometric_order_carries_checkpoints_to_and_from_the_tracked_folder(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    go = _load("geometric_order")
    monkeypatch.setattr(go, "CARRY", tmp_path / "tracked" / go.NAME)
    cfg, runs = go.FULL, tmp_path / "runs"
    here = go.run_dir(cfg, 250, runs)
    there = go.run_dir(cfg, 250, tmp_path / "tracked")
    here.mkdir(parents=True)
    torch.save({"step": 30_000}, here / "checkpoint.pt")
    assert go.carry(cfg, 250, runs, out=True) == 30_000  # copied out
    assert torch.load(there / "checkpoint.pt")["step"] == 30_000 and not (there / "snapshot-1000000.pt").exists()
    # a fresh clone: nothing under runs/, so the committed copy comes back
    (here / "checkpoint.pt").unlink()
    assert go.carry(cfg, 250, runs, out=False) == 30_000
    # a run further along than the committed copy is never replaced by it, and the snapshot travels once
    torch.save({"step": 50_000}, here / "checkpoint.pt")
    torch.save({"w": 1}, here / "snapshot-1000000.pt")
    assert go.carry(cfg, 250, runs, out=False) == 50_000
    assert go.carry(cfg, 250, runs, out=True) == 50_000 and (there / "snapshot-1000000.pt").is_file()
    assert not list(there.glob("*.tmp")) and not list(here.glob("*.tmp"))  # no temporary copy left behind
    assert go.status(cfg, runs)[250]["committed_copy"] == 50_000


def test_generalisation_describes_each_sample_category():
    gen = _load("generalisation")
    labels = ["spurious", "spurious", "spurious", "memorized", "generalized"]
    near = [0.95, 0.9, 0.2, 0.99, 0.1]  # r^2 to the nearest training image
    els = [0.5, 0.6, 0.8, 0.4, 0.7]  # r^2 to the ELS sample from the same noise
    d = gen.spurious_description(labels, near, els)
    assert d["spurious"] == {"n": 3, "median_r2_nearest_training_image": 0.9, "median_r2_ELS_sample": 0.6,
                             "share_closer_to_the_training_image": pytest.approx(2 / 3)}  # fmt: skip
    assert d["memorized"]["n"] == 1 and d["generalized"]["share_closer_to_the_training_image"] == 0.0
    assert gen.spurious_description(["generalized"], [0.1], [0.2])["spurious"]["n"] == 0


def test_generalisation_family_description_on_known_answers(tmp_path):
    """Per N the best base model (the composite never counts), the closest denoiser per level, and the N
    where no base model reaches median r^2 0.5; networks outside the family are ignored."""
    gen = _load("generalisation")

    def net(key, n, medians, mse):
        models = {m: {"median_r2": medians.get(m, -1.0), "median_r2_ci": [-1.0, 1.0],
                      "mse_held": mse.get(m, [9.0, 9.0])} for m in gen.MODELS}  # fmt: skip
        return {"key": key, "n_train": n, "log_snr": [-1.0, 1.0], "nearest_training_image_median_r2": 0.5,
                "models": models}  # fmt: skip

    results = [
        net("purpose", 5000, {"gaussian": 0.9}, {}),
        net("tiny64", 64, {"PSPC": 0.7, "composite": 0.95}, {"gaussian": [1.0, 3.0], "ELS": [2.0, 0.5]}),
        net("tiny11", 11, {"empirical": 0.4, "composite": 0.9}, {"empirical": [0.1, 0.1]}),
    ]
    d = gen.family_description(results)
    assert [r["n_train"] for r in d["per_n"]] == [11, 64]
    assert d["per_n"][1]["best_model"] == "PSPC" and d["per_n"][1]["closest_denoiser_per_level"] == ["gaussian", "ELS"]
    assert d["per_n"][0]["best_model"] == "empirical" and d["n_where_no_model_reaches_0.5"] == [11]
    assert gen.family_description(results[:1]) is None
    gen.family_figure(results, tmp_path / "family.png")
    assert (tmp_path / "family.png").stat().st_size > 10_000
