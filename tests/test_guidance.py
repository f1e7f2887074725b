"""Negative guidance: exact DNG is the score of the safe mixture; baselines; online posterior; bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

import statphys_diffusion as sd
from statphys_diffusion.samplers import DDPMAncestral


def _random_mixture(rng, d, k=4):
    a = rng.standard_normal((k, d, d))
    cov = a @ a.transpose(0, 2, 1) / d + 0.05 * np.eye(d)
    return sd.GaussianMixture.full(
        2 * rng.standard_normal((k, d)), cov, rng.dirichlet(np.ones(k) * 2), labels=[0, 1, 1, 2]
    )


def _safe(model, removed):
    keep = ~np.isin(model.labels, removed)
    w = model.weights[keep]
    return sd.GaussianMixture.full(model.means[keep], model.covariances[keep], w / w.sum(), labels=model.labels[keep])


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16), d=st.integers(1, 3), t=st.floats(0.02, 3.0), removed=st.sampled_from([0, 1, 2, (0, 2)])
)
def test_exact_dng_is_the_score_of_the_safe_mixture(seed, d, t, removed):
    rng = np.random.default_rng(seed)
    m = _random_mixture(rng, d)
    safe = _safe(m, removed)
    g = sd.DynamicNegativeGuidance(m, removed)
    x = m.sample(50, t, rng=rng).x
    ref = safe.score(x, t)
    # relative 1e-10: both sides are sums of O(|x|/sigma^2) terms formed in float64
    np.testing.assert_allclose(g.score(x, t), ref, rtol=1e-10, atol=1e-10 * (1 + np.abs(ref).max()))
    np.testing.assert_allclose(g.denoise(x, t), safe.denoise(x, t), rtol=1e-9, atol=1e-9)
    # the literal guidance form s - w (s_c - s): same value, with the cancellation error
    # eps |s| / (1 - p(C | x)) that the form carries (checked with 100 eps of margin)
    p_kept = 1 - m.class_posterior(x, t)[:, np.isin(m.classes, removed)].sum(axis=1)
    lit = g.guidance_form_score(x, t)
    bound = 1e-14 * (1 + np.abs(m.score(x, t)).max(axis=1)) / np.maximum(p_kept, 1e-300) + 1e-10 * (
        1 + np.abs(ref).max(axis=1)
    )
    assert np.all(np.abs(lit - ref).max(axis=1) <= bound)


def test_sampling_with_exact_dng_matches_exact_safe_draws():
    m = sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.0]], 0.1, [0.3, 0.3, 0.4], labels=[0, 1, 2])
    safe = sd.GaussianMixture.isotropic([[-2.0], [2.0]], 0.1, [3 / 7, 4 / 7], labels=[0, 2])
    g = sd.DynamicNegativeGuidance(m, 1)
    out = DDPMAncestral(400).sample(g, n=3000, t_start=6.0, t_end=1e-3, rng=np.random.default_rng(0))
    ref = safe.sample(3000, 1e-3, rng=np.random.default_rng(1)).x
    # two-sample KS at the 1e-3 level: 400 steps leave a bias far below the KS resolution (~0.035)
    assert ks_2samp(out.x[:, 0], ref[:, 0]).pvalue > 1e-3
    assert np.all(m.class_posterior(out.x, 1e-3)[:, 1] < 0.5)  # no sample of the removed class


def test_online_posterior_converges_along_an_unguided_chain():
    m = sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.0]], 0.1, [0.3, 0.3, 0.4], labels=[0, 1, 2])
    errs = []
    for steps in (50, 200, 800):
        g = sd.DynamicNegativeGuidance(m, 1, posterior="online", scale=0.0, p_min=1e-300, p_max=1 - 1e-15)
        out = DDPMAncestral(steps).sample(g, n=1500, t_start=6.0, t_end=0.05, rng=np.random.default_rng(1))
        g.score(out.x, 0.05)  # the last transition updates p at t_end
        errs.append(np.abs(g.tracked_posterior[:, 0] - m.class_posterior(out.x, 0.05)[:, 1]).mean())
    # measured 0.14, 0.065, 0.031: about 1/sqrt(steps) (no renormalisation over classes in this update)
    assert errs[0] > 1.5 * errs[1] > 2.25 * errs[2] and errs[2] < 0.05


def test_negative_prompting_and_sld_formulas():
    m = sd.GaussianMixture.isotropic([[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]], 0.2, labels=[0, 1, 2])
    x = np.random.default_rng(2).standard_normal((6, 2))
    t = 0.5
    s, s1, s2 = m.score(x, t), m.score(x, t, y=1), m.score(x, t, y=2)
    np.testing.assert_allclose(sd.NegativePrompting(m, 1, 0.0).score(x, t), s)
    np.testing.assert_allclose(sd.NegativePrompting(m, [1, 2], 3.0).score(x, t), s - 3 * (s1 - s) - 3 * (s2 - s))
    # SLD with a huge slope and no threshold cut-off is negative prompting with scale 1 where eps - eps_c < 0
    sig = float(m.schedule.sigma(t))
    sld = sd.SafeLatentDiffusion(m, 1, 1.0, threshold=np.inf, s_s=1e12, s_m=0.0, warmup_steps=1)
    np.testing.assert_allclose(sld.score(x, t), s)  # warm-up call: unguided
    np.testing.assert_allclose(sld.score(x, t), s - (s1 - s))
    sld.reset()
    np.testing.assert_allclose(sld.score(x, t), s)
    off = sd.SafeLatentDiffusion(m, 1, 1.0, threshold=-np.inf)
    np.testing.assert_allclose(off.score(x, t), s)  # nowhere below the threshold: no guidance
    assert sig > 0


def test_bad_input():
    m = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1, labels=[0, 1])
    with pytest.raises(ValueError, match="every class"):
        sd.DynamicNegativeGuidance(m, [0, 1])
    with pytest.raises(ValueError, match="not classes"):
        sd.NegativePrompting(m, 7)
    with pytest.raises(ValueError, match="scale"):
        sd.NegativePrompting(m, 0, -1.0)
    with pytest.raises(ValueError, match="twice"):
        sd.NegativePrompting(m, [0, 0])
    with pytest.raises(ValueError, match="labelled"):
        sd.NegativePrompting(sd.GaussianMixture.isotropic([[0.0], [1.0]], 0.1), 0)
    with pytest.raises(ValueError, match="posterior"):
        sd.DynamicNegativeGuidance(m, 0, posterior="approximate")
    with pytest.raises(ValueError, match="p_min"):
        sd.DynamicNegativeGuidance(m, 0, posterior="online", p_min=0.5, p_max=0.4)
    with pytest.raises(ValueError, match="prior"):
        sd.DynamicNegativeGuidance(m, 0, posterior="online", prior=1.5)
    with pytest.raises(ValueError, match="beta_m"):
        sd.SafeLatentDiffusion(m, 0, beta_m=1.0)


def test_online_dng_refuses_multi_stage_samplers_and_warns_off_ddpm():
    """The online posterior assumes DDPM ancestral kernels: Heun (two score calls per step) is refused,
    deterministic DDIM draws a warning, DDPM ancestral runs silently."""
    import warnings

    from statphys_diffusion.samplers import DDIM, DDPMAncestral, Heun

    gm = sd.GaussianMixture.isotropic([[-2.0], [0.0], [2.0]], 0.1, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="called twice"):
        Heun(20).sample(sd.DynamicNegativeGuidance(gm, 1, posterior="online"), n=50, rng=np.random.default_rng(0))
    with pytest.warns(RuntimeWarning, match="assumes DDPM ancestral steps"):
        DDIM(30).sample(sd.DynamicNegativeGuidance(gm, 1, posterior="online"), n=200, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        DDPMAncestral(30).sample(
            sd.DynamicNegativeGuidance(gm, 1, posterior="online"), n=200, rng=np.random.default_rng(0)
        )


def test_guided_denoisers_refuse_alpha_zero():
    fm = sd.GaussianMixture.isotropic([[-1.0], [1.0]], 0.1, labels=[0, 1], schedule=sd.FlowMatching())
    for g in (sd.DynamicNegativeGuidance(fm, 1), sd.NegativePrompting(fm, 1, 1.0)):
        with pytest.raises(ValueError, match="alpha_t = 0"):
            g.denoise(np.zeros((2, 1)), 1.0)
