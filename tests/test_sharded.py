"""The sharded empirical model against the in-memory one (the same numbers, to rounding), in this process
and on a Dask LocalCluster of 2 workers, with unequal shards, files, bad shards and a lost worker."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statphys_diffusion as sd


def _split(n: int, cuts) -> list[slice]:
    edges = [0, *sorted(set(cuts)), n]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _agree(sharded, ref, x, t, labelled: bool) -> None:
    # float64 throughout: the merge adds one log-sum-exp over shards and one weighted sum of denoisers,
    # so the two agree to a few ulps of the largest term (tolerances: 1e-12 on [-1, 1]-sized denoisers,
    # 1e-12 relative on log-densities and scores, whose size grows as 1 / sigma^2)
    np.testing.assert_allclose(sharded.denoise(x, t), ref.denoise(x, t), rtol=0, atol=1e-12)
    lp = ref.log_prob(x, t)
    np.testing.assert_allclose(sharded.log_prob(x, t), lp, rtol=1e-12, atol=1e-12 * np.abs(lp).max())
    s = ref.score(x, t)
    np.testing.assert_allclose(sharded.score(x, t), s, rtol=0, atol=1e-12 * max(1.0, np.abs(s).max()))
    if labelled:
        np.testing.assert_allclose(sharded.class_posterior(x, t), ref.class_posterior(x, t), rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from([3, 20]),  # the small-d path and the streaming path of each shard's model
    st.lists(st.integers(1, 39), min_size=0, max_size=4),  # shard boundaries: unequal sizes
    st.floats(0.02, 4.0),
)
def test_sharded_equals_the_in_memory_model(seed, d, cuts, t):
    rng = np.random.default_rng(seed)
    y = rng.uniform(-1, 1, (40, d))
    labels = rng.integers(0, 3, 40)
    parts = _split(40, cuts)
    sharded = sd.ShardedEmpirical([y[p] for p in parts], labels=[labels[p] for p in parts])
    ref = sd.EmpiricalDistribution(y, labels)
    x = rng.standard_normal((5, d))
    _agree(sharded, ref, x, t, labelled=True)
    # the nearest training point to x / alpha, against a brute-force search
    dist, idx = sharded.nearest(x, t)
    brute = np.linalg.norm(x[:, None, :] / float(ref.schedule.alpha(t)) - y[None], axis=2)
    np.testing.assert_array_equal(idx, brute.argmin(axis=1))
    np.testing.assert_allclose(dist, brute.min(axis=1), rtol=1e-10)
    np.testing.assert_allclose(sharded.mean(), y.mean(axis=0), atol=1e-14)
    np.testing.assert_allclose(sharded.covariance(), np.cov(y.T, bias=True), atol=1e-13)
    assert sharded.n_points == 40 and sharded.n_shards == len(parts) and sharded.shard_sizes.sum() == 40


def test_files_bad_shards_and_draws(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.uniform(-1, 1, (25, 10))
    labels = np.arange(25) % 4
    paths = sd.write_shards(y, tmp_path / "s", 3, labels=labels)
    assert [p.name for p in paths] == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    sharded = sd.ShardedEmpirical.from_directory(tmp_path / "s")
    _agree(sharded, sd.EmpiricalDistribution(y, labels), rng.standard_normal((3, 10)), 0.3, labelled=True)
    np.testing.assert_array_equal(sharded.classes, np.arange(4))
    draws = sharded.sample(50, 0.0, rng=0)
    np.testing.assert_array_equal(draws.x0, y[draws.components])  # clean draws are training points
    with pytest.raises(ValueError, match="already holds shard files"):
        sd.write_shards(y, tmp_path / "s", 2)
    with pytest.raises(ValueError, match="shard 1 .* is empty"):
        sd.ShardedEmpirical([y[:3], y[3:3], y[3:]])
    with pytest.raises(ValueError, match="different dimensions"):
        sd.ShardedEmpirical([y[:3], y[3:, :5]])
    with pytest.raises(ValueError, match="no file"):
        sd.ShardedEmpirical([tmp_path / "missing.npy"])
    with pytest.raises(ValueError, match="no labels"):
        sd.ShardedEmpirical([y]).class_posterior(y[:2], 0.3)
    with pytest.raises(ValueError, match="n_shards"):
        sd.write_shards(y, tmp_path / "t", 26)
    with pytest.raises(ValueError, match="t"):
        sharded.score(y[:2], 0.0)


def test_on_a_local_dask_cluster_with_a_lost_worker(tmp_path):
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(2)
    y = rng.uniform(-1, 1, (60, 16))
    labels = np.arange(60) % 3
    ref = sd.EmpiricalDistribution(y, labels)
    x = rng.standard_normal((6, 16))
    sd.write_shards(y, tmp_path / "s", 3, labels=labels)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            on_files = sd.ShardedEmpirical.from_directory(tmp_path / "s", client=client)
            scattered = sd.ShardedEmpirical([y[:10], y[10:45], y[45:]], client=client)
            for t in (0.05, 0.5):
                _agree(on_files, ref, x, t, labelled=True)
                _agree(scattered, sd.EmpiricalDistribution(y), x, t, labelled=False)
            np.testing.assert_allclose(on_files.covariance(), np.cov(y.T, bias=True), atol=1e-13)
            assert "dask" in repr(on_files) and on_files.sample(5, rng=0).x.shape == (5, 16)
            # a worker is lost: shards read from files are rebuilt elsewhere (the answer is whole), a scattered
            # shard that lived there cannot be and the call says so; never an answer from fewer shards
            holders = client.who_has(list(scattered._futures))
            victim = next(iter(holders[scattered._futures[1].key]))
            name = next(k for k, w in cl.workers.items() if w.address == victim)
            cl.sync(cl.workers[name].close)
            _agree(on_files, ref, x, 0.5, labelled=True)
            try:
                got = scattered.denoise(x, 0.5)
            except sd.ShardLost as exc:
                assert "scattered" in str(exc)
            else:  # the data had also been replicated to the surviving worker: then it must be whole
                np.testing.assert_allclose(got, sd.EmpiricalDistribution(y).denoise(x, 0.5), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from(["LS", "ELS", "PSPC"]),
    st.lists(st.integers(1, 9), min_size=1, max_size=3),
    st.floats(0.02, 3.0),
    st.sampled_from([1, 3]),
)
def test_sharded_local_models_equal_the_whole(seed, kind, cuts, t, k):
    rng = np.random.default_rng(seed)
    train = rng.uniform(-1, 1, (10, 2, 5, 4))
    parts = _split(10, cuts)
    sharded = sd.ShardedLocalModel(kind, [train[p] for p in parts], patch_size=k)
    cls = {"LS": sd.LocalEmpirical, "ELS": sd.EquivariantLocalEmpirical, "PSPC": sd.PatchPosteriorAverage}[kind]
    whole = cls(train, patch_size=k)
    x = rng.standard_normal((3, 40))
    # per pixel (PSPC: per crop, then the crops' average) a log-sum-exp over shards and a weighted sum of
    # the shards' means: rounding only
    np.testing.assert_allclose(sharded.denoise(x, t), whole.denoise(x, t), rtol=0, atol=1e-12)
    s = whole.score(x, t)
    np.testing.assert_allclose(sharded.score(x, t), s, rtol=0, atol=1e-12 * max(1.0, np.abs(s).max()))


def test_sharded_local_model_refusals_and_a_local_cluster(tmp_path):
    train = np.random.default_rng(3).uniform(-1, 1, (9, 1, 6, 6))
    with pytest.raises(ValueError, match="kind"):
        sd.ShardedLocalModel("locality", [train], patch_size=3)
    with pytest.raises(ValueError, match="shard 1 is empty"):
        sd.ShardedLocalModel("ELS", [train[:3], train[3:3]], patch_size=3)
    with pytest.raises(ValueError, match="different shapes"):
        sd.ShardedLocalModel("LS", [train[:3], train[3:, :, :5]], patch_size=3)
    distributed = pytest.importorskip("distributed")
    np.save(tmp_path / "a.npy", train[:4])
    np.save(tmp_path / "b.npy", train[4:])
    x = np.random.default_rng(4).standard_normal((2, 36))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            els = sd.ShardedLocalModel("ELS", [tmp_path / "a.npy", tmp_path / "b.npy"], patch_size=3, client=client)
            np.testing.assert_allclose(
                els.denoise(x, 0.2), sd.EquivariantLocalEmpirical(train, patch_size=3).denoise(x, 0.2), atol=1e-12
            )
            pspc = sd.ShardedLocalModel("PSPC", [tmp_path / "a.npy", tmp_path / "b.npy"], patch_size=4, client=client)
            np.testing.assert_allclose(
                pspc.denoise(x, 0.2), sd.PatchPosteriorAverage(train, patch_size=4).denoise(x, 0.2), atol=1e-12
            )
