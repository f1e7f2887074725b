"""Calibration and sample agreement between a "network" and an analytic model, with networks whose
answer is known: the model itself (r^2 = 1, zero denoiser gap), the empirical model against LS with a
window covering the image (the same model, to rounding), and an LS "network" whose patch size the
calibration must find. Also r^2's closed forms and the regime map's local kind."""

import numpy as np
import pytest

import statphys_diffusion as sd

RNG = np.random.default_rng(0)
TRAIN = RNG.uniform(-1, 1, (12, 1, 5, 5))


def test_per_sample_r2_closed_forms():
    a = RNG.standard_normal((4, 30))
    centred = a - a.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(sd.per_sample_r2(a, a), 1.0)
    # predicting each row's mean explains nothing; a + c (a - mean) leaves 1 - c^2
    np.testing.assert_allclose(sd.per_sample_r2(a, a - centred), 0.0, atol=1e-12)
    np.testing.assert_allclose(sd.per_sample_r2(a, a + 0.5 * centred), 0.75, rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        sd.per_sample_r2(a, a[:, :5])


def test_a_model_agrees_with_itself_and_ls_covering_the_image_with_the_empirical_model():
    emp = sd.EmpiricalDistribution(TRAIN.reshape(12, -1))
    noise = RNG.standard_normal((6, 25))
    same = sd.sample_agreement(emp, emp, sd.DDIM(8), noise, rng=0)
    np.testing.assert_allclose(same.r2, 1.0)
    assert same.median == 1.0 and same.fraction_above == 1.0 and np.all(same.denoiser_mse == 0)
    ls = sd.LocalEmpirical(TRAIN, patch_size=9)  # 9 >= 2 * 5 - 1: the empirical model
    res = sd.sample_agreement(emp, ls, sd.DDIM(8), noise, rng=0)
    assert np.all(res.r2 > 1 - 1e-8) and res.denoiser_mse.max() < 1e-16
    # a different model agrees less, and the interval brackets the median
    local = sd.sample_agreement(emp, sd.LocalEmpirical(TRAIN, patch_size=1), sd.DDIM(8), noise, rng=0)
    assert local.median < 0.999 and local.median_low <= local.median <= local.median_high
    assert local.times.size == 8 and local.denoiser_mse.shape == (8,) and "SampleAgreement(" in repr(local)
    assert len(local.to_rows()) == 6


def test_a_stochastic_sampler_is_refused():
    emp = sd.EmpiricalDistribution(TRAIN.reshape(12, -1))
    with pytest.raises(ValueError, match="deterministic"):
        sd.sample_agreement(emp, emp, sd.DDIM(5, eta=1.0), RNG.standard_normal((3, 25)))
    with pytest.raises(ValueError, match="schedule"):
        other = sd.EmpiricalDistribution(TRAIN.reshape(12, -1), schedule=sd.VPSDE())
        sd.sample_agreement(emp, other, sd.DDIM(5), RNG.standard_normal((3, 25)))


def test_calibration_finds_the_patch_size_of_an_ls_network():
    network = sd.LocalEmpirical(TRAIN, patch_size=3)  # a "network" that is LS with k = 3
    model = sd.LocalEmpirical(TRAIN, patch_size=1)
    held = RNG.uniform(-1, 1, (20, 25))
    cal = sd.calibrate_patch_size(network, model, held, [0.1, 0.5, 1.0], [1, 3, 5], n=8, rng=1)
    assert cal.best.tolist() == [3, 3, 3]
    np.testing.assert_array_equal(cal.mse[:, 1], 0.0)
    assert np.all(cal.mse[:, [0, 2]] > 0)
    k_of_t = cal.as_function()
    assert k_of_t(0.12) == 3 and k_of_t(3.0) == 3
    calibrated = sd.LocalEmpirical(TRAIN, patch_size=k_of_t)
    np.testing.assert_array_equal(calibrated.denoise(held[:2], 0.5), network.denoise(held[:2], 0.5))
    assert len(cal.to_rows()) == 9


def test_the_regime_map_names_a_network_that_is_a_local_model():
    network = sd.LocalEmpirical(TRAIN, patch_size=3)
    train, held = TRAIN.reshape(12, -1), RNG.uniform(-1, 1, (12, 25))
    refs = {
        "empirical": sd.EmpiricalDistribution(train),
        "gaussian": sd.GaussianMixture.fit(train),
        "ls3": sd.LocalEmpirical(TRAIN, patch_size=3),
    }
    rm = sd.regime_map(network, train, held, [0.01, 0.03, 0.1], references=refs, n_points=12, rng=2)
    assert rm.kinds == ("empirical", "generalising", "local")
    assert list(rm.regime) == ["local"] * 3
    # without the local reference the same network passes for a memoriser (it reproduces its own
    # training images at low noise; on held-out images it makes mosaics, which only LS explains)
    no_local = {k: refs[k] for k in ("empirical", "gaussian")}
    rm2 = sd.regime_map(network, train, held, [0.01], references=no_local, n_points=12, rng=2)
    assert list(rm2.regime) == ["memorising"]


def test_calibration_of_another_locality_parameter():
    smooth = np.cumsum(RNG.standard_normal((60, 1, 5, 5)), axis=3) / 3
    network = sd.DataDrivenLocalEmpirical(smooth, threshold=0.3)
    model = sd.DataDrivenLocalEmpirical(smooth, threshold=0.0)
    held = np.cumsum(RNG.standard_normal((10, 1, 5, 5)), axis=3).reshape(10, -1) / 3
    cal = sd.calibrate_patch_size(network, model, held, [0.2], [0.0, 0.3, 0.9], parameter="threshold", n=6, rng=0)
    assert cal.best.tolist() == [0.3] and cal.mse[0, 1] == 0.0
    with pytest.raises(ValueError, match="parameter"):
        sd.calibrate_patch_size(network, model, held, [0.2], [0.3], parameter="not a name")


def test_a_network_run_is_reused_as_given_and_checked():
    emp = sd.EmpiricalDistribution(TRAIN.reshape(12, -1))
    ls = sd.LocalEmpirical(TRAIN, patch_size=3)
    noise = RNG.standard_normal((5, 25))
    sampler = sd.DDIM(6)
    run = sampler.sample(emp, x_init=noise, return_trajectory=True)
    fresh = sd.sample_agreement(emp, ls, sampler, noise, rng=0)
    reused = sd.sample_agreement(emp, ls, sampler, noise, network_run=run, rng=0)
    np.testing.assert_array_equal(fresh.r2, reused.r2)
    np.testing.assert_array_equal(fresh.denoiser_mse, reused.denoiser_mse)
    with pytest.raises(ValueError, match="network_run"):
        sd.sample_agreement(emp, ls, sampler, noise + 1.0, network_run=run)
    with pytest.raises(ValueError, match="network_run"):
        sd.sample_agreement(emp, ls, sampler, noise, network_run=sampler.sample(emp, x_init=noise))


def test_without_the_denoiser_comparison_only_the_samples_are_compared():
    emp = sd.EmpiricalDistribution(TRAIN.reshape(12, -1))
    ls = sd.LocalEmpirical(TRAIN, patch_size=3)
    noise = RNG.standard_normal((5, 25))
    sampler = sd.DDIM(6)
    full = sd.sample_agreement(emp, ls, sampler, noise, rng=0)
    bare = sd.sample_agreement(emp, ls, sampler, noise, compare_denoisers=False, rng=0)
    np.testing.assert_array_equal(full.r2, bare.r2)
    assert bare.median == full.median and bare.times.size == 0 and bare.denoiser_mse.size == 0
    # a run without its trajectory is enough then, and still checked for its size and grid
    run = sampler.sample(emp, x_init=noise)
    reused = sd.sample_agreement(emp, ls, sampler, noise, network_run=run, compare_denoisers=False, rng=0)
    np.testing.assert_array_equal(reused.r2, full.r2)
    with pytest.raises(ValueError, match="network_run"):
        sd.sample_agreement(emp, ls, sampler, noise[:3], network_run=run, compare_denoisers=False)
    with pytest.raises(ValueError, match="network_run"):
        sd.sample_agreement(emp, ls, sd.DDIM(7), noise, network_run=run, compare_denoisers=False)


def test_r2_intervals_against_a_direct_bootstrap_and_batches():
    r2 = np.random.default_rng(3).uniform(-0.5, 1.0, 41)
    res = sd.r2_intervals(r2, threshold=0.5, n_bootstrap=400, confidence=0.9, rng=7)
    # the same percentile bootstrap written out independently
    idx = np.random.default_rng(7).integers(0, 41, size=(400, 41))
    meds = np.sort(np.median(r2[idx], axis=1))
    assert res["median"] == np.median(r2) and res["fraction_above"] == np.mean(r2 > 0.5)
    np.testing.assert_allclose([res["median_low"], res["median_high"]], np.quantile(meds, [0.05, 0.95]))
    assert res["median_low"] <= res["median"] <= res["median_high"]
    # a NaN r^2 (constant reference) counts as below every threshold
    with_nan = sd.r2_intervals(np.r_[r2, np.nan], threshold=0.5, n_bootstrap=10, rng=0)
    assert with_nan["fraction_above"] == np.sum(r2 > 0.5) / 42
    with pytest.raises(ValueError, match="r2"):
        sd.r2_intervals([0.3])
    with pytest.raises(ValueError, match="confidence"):
        sd.r2_intervals(r2, confidence=1.0)
