"""One contract suite over every score model: the protocols of statphys_diffusion.protocols.

Each model must satisfy its declared protocols (members present, `require` passes) and the
contract they promise, checked against independent identities: shapes (M, d); Tweedie,
D = (x + sigma^2 s) / alpha (tolerance 1e-10 relative for float64 exact models, 1e-4 for the
float32 network); class posteriors are probabilities; the unconditional denoiser is the
posterior average of the conditional ones (exact models, 1e-10); hvp agrees with central
differences of the score (step 1e-5: error O(h^2) ~ 1e-9 relative to the curvature scale,
tolerance 1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest

import statphys_diffusion as sd
from statphys_diffusion import protocols as P

OU = sd.OrnsteinUhlenbeck()
T = 0.4


def _exact_models():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 4))
    a = rng.normal(size=(3, 4, 4))
    full = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(4)
    return {
        "isotropic": sd.GaussianMixture.isotropic(means, [0.3, 0.5, 0.2], labels=[0, 1, 1], schedule=OU),
        "diagonal": sd.GaussianMixture.diagonal(means, rng.uniform(0.2, 1, (3, 4)), labels=[0, 1, 1], schedule=OU),
        "full": sd.GaussianMixture.full(means, full, labels=[0, 0, 1], schedule=OU),
        "empirical": sd.EmpiricalDistribution(rng.normal(size=(10, 4)), labels=np.arange(10) % 2, schedule=OU),
        "manifold": sd.LinearManifold(np.linalg.qr(rng.normal(size=(4, 2)))[0], [1.0, 0.3], schedule=OU),
    }


def _guided():
    base = _exact_models()["isotropic"]
    return {
        "DNG": sd.DynamicNegativeGuidance(base, [1], scale=1.0),
        "NP": sd.NegativePrompting(base, [1], 1.0),
        "SLD": sd.SafeLatentDiffusion(base, [1], 1.0),
    }


def _x(model, m=5, seed=1):
    return np.random.default_rng(seed).normal(size=(m, model.dim))


def _check_score_model(model, rtol):
    assert isinstance(model, P.ScoreModel)
    assert P.require(model, P.ScoreModel) is model
    x = _x(model)
    # stateful wrappers (SafeLatentDiffusion's momentum) obey the contract call by call after reset()
    reset = getattr(model, "reset", lambda: None)
    reset()
    s = model.score(x, T)
    reset()
    d = model.denoise(x, T)
    assert s.shape == x.shape and d.shape == x.shape
    al, s2 = float(model.schedule.alpha(T)), float(model.schedule.sigma2(T))
    np.testing.assert_allclose(d, (x + s2 * s) / al, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", list(_exact_models()))
def test_exact_models_satisfy_exact_mixture_contract(name):
    model = _exact_models()[name]
    _check_score_model(model, 1e-10)
    assert isinstance(model, P.CurvatureModel) and isinstance(model, P.ExactMixture)
    comp = model.components
    assert isinstance(comp, sd.MixtureComponents)
    assert comp.means.shape == (model.n_components, model.dim) and not comp.means.flags.writeable
    np.testing.assert_allclose(comp.weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(comp.mean_sq_norms, (comp.means**2).sum(1), rtol=1e-12)
    with pytest.raises(ValueError):
        comp.means[0, 0] = 1.0
    x = _x(model)
    # hvp against central differences of the score
    v = np.random.default_rng(2).normal(size=x.shape)
    h = 1e-5
    fd = (model.score(x + h * v, T) - model.score(x - h * v, T)) / (2 * h)
    np.testing.assert_allclose(model.hvp(x, T, v), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    if model.classes is not None:
        assert isinstance(model, P.LabelledScoreModel)
        P.require(model, P.LabelledScoreModel, labelled=True)
        post = model.class_posterior(x, T)
        assert post.shape == (x.shape[0], model.classes.size)
        np.testing.assert_allclose(post.sum(1), 1.0, rtol=1e-12)
        mix = sum(post[:, [j]] * model.denoise(x, T, y=c) for j, c in enumerate(model.classes))
        np.testing.assert_allclose(mix, model.denoise(x, T), rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(comp.classes, model.classes)
    else:
        with pytest.raises(ValueError, match="labelled"):
            P.require(model, P.LabelledScoreModel, labelled=True)
        with pytest.raises(ValueError, match="no labels"):
            comp.require_labels()


@pytest.mark.parametrize("name", list(_guided()))
def test_guidance_wrappers_are_conditional_score_models(name):
    model = _guided()[name]
    _check_score_model(model, 1e-10)
    assert isinstance(model, P.ConditionalDenoiser)


def test_torch_adapter_is_a_curvature_score_model():
    torch = pytest.importorskip("torch")
    from statphys_diffusion.nets import TorchScoreModel

    gm = sd.GaussianMixture.isotropic([[0.5, -0.2, 0.1]], [0.4], schedule=OU)
    al, s2 = float(OU.alpha(T)), float(OU.sigma2(T))

    class Eps(torch.nn.Module):  # the Gaussian's exact eps, so the adapter can be checked
        def forward(self, x, t):
            xs = x.detach().numpy().astype(np.float64)
            return torch.as_tensor(-np.sqrt(s2) * gm.score(xs, T), dtype=x.dtype) + 0 * x

    model = TorchScoreModel(Eps(), OU, image_shape=(3,), prediction="eps")
    assert isinstance(model, P.ScoreModel) and isinstance(model, P.CurvatureModel)
    P.require(model, P.CurvatureModel)
    x = _x(model, 3).astype(np.float32)
    s, d = model.score(x, T), model.denoise(x, T)
    assert s.shape == x.shape and d.shape == x.shape
    np.testing.assert_allclose(d, (x + s2 * s) / al, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s, gm.score(x.astype(np.float64), T), rtol=1e-4, atol=1e-5)


def test_require_names_the_argument_the_members_and_the_purpose():
    class OnlyDenoise:
        schedule = OU

        def denoise(self, x, t):
            return x

    P.require(OnlyDenoise(), P.Denoiser)
    with pytest.raises(ValueError, match=r"references\['a'\] must have .*`score`.*has no `dim`, `score`") as e:
        P.require(OnlyDenoise(), P.ScoreModel, name="references['a']", purpose="for the test")
    assert "for the test" in str(e.value)
    with pytest.raises(ValueError, match="protocol must be one of"):
        P.require(OnlyDenoise(), int)
    # public functions check once, at the entry, with the same message
    with pytest.raises(ValueError, match="must have .*`schedule`"):
        sd.regime_map(object(), np.zeros((4, 2)), np.zeros((4, 2)), [0.5])
    with pytest.raises(ValueError, match="labelled"):
        sd.entropy_rate(OnlyDenoise(), [0.5])

    class LabelledOnly(OnlyDenoise):
        classes = labels = np.array([0, 1])
        class_weights = np.array([0.5, 0.5])

    with pytest.raises(ValueError, match="ExactMixture"):
        sd.entropy_rate(LabelledOnly(), [0.5])


@pytest.mark.parametrize("name", list(_exact_models()))
def test_exact_models_offer_moments_sampling_and_dense_curvature(name):
    """The members the theory layer's exact paths use, each checked against an independent value."""
    model = _exact_models()[name]
    assert P.satisfies(model, P.Moments) and P.satisfies(model, P.Samplable)
    assert isinstance(model, P.Moments) and isinstance(model, P.Samplable)
    comp = model.components
    # mean = sum_k w_k mu_k; covariance = sum_k w_k (C_k + mu_k mu_k^T) - m m^T (law of total variance)
    w, mu = comp.weights, comp.means
    m = w @ mu
    np.testing.assert_allclose(model.mean(), m, rtol=1e-12, atol=1e-12)
    second = np.einsum("k,kij->ij", w, model.covariances) + np.einsum("k,ki,kj->ij", w, mu, mu)
    np.testing.assert_allclose(model.covariance(), second - np.outer(m, m), rtol=1e-10, atol=1e-12)
    x = _x(model, 2)
    h = model.hessian(x, T)
    assert h.shape == (2, model.dim, model.dim)
    v = np.random.default_rng(5).normal(size=model.dim)
    np.testing.assert_allclose(h[0] @ v, model.hvp(x[:1], T, v[None])[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.hessian_operator(x[0], T) @ v, h[0] @ v, rtol=1e-9, atol=1e-12)
    draws = model.sample(7, T, rng=np.random.default_rng(0))
    assert draws.x0.shape == (7, model.dim)


def test_satisfies_is_the_test_require_makes():
    class OnlyDenoise:
        schedule = OU

        def denoise(self, x, t):
            return x

    for proto in (P.Denoiser, P.ScoreModel, P.CurvatureModel, P.Moments, P.Samplable, P.ExactMixture):
        ok = P.satisfies(OnlyDenoise(), proto)
        try:
            P.require(OnlyDenoise(), proto)
            raised = False
        except ValueError:
            raised = True
        assert ok is not raised, proto
    assert P.satisfies(OnlyDenoise(), P.Denoiser) and not P.satisfies(OnlyDenoise(), P.Moments)
    with pytest.raises(ValueError, match="protocol must be one of"):
        P.satisfies(OnlyDenoise(), int)


def test_public_api_is_the_union_of_the_modules_lists():
    import sys

    names = sd.__all__
    assert len(names) == len(set(names)), "a public name is exported by two modules"
    assert all(hasattr(sd, n) for n in names)
    for module in ("protocols", "schedules", "mixture", "theory"):
        mod = sys.modules[f"statphys_diffusion.{module}"]
        assert set(mod.__all__) <= set(names), module
    assert {"satisfies", "require", "Moments", "Samplable"} <= set(names)


def test_protocol_checks_do_not_evaluate_properties():
    """satisfies/require look members up statically: a property is not run (a mixture's dense
    ``covariances`` would be (K, d, d), 70 GiB for the CIFAR-10 empirical model)."""

    class Model:
        schedule = OU
        dim = 1
        calls = 0

        def score(self, x, t):
            return -x

        def denoise(self, x, t):
            return x

        @property
        def classes(self):
            Model.calls += 1
            raise RuntimeError("evaluated")

        def class_posterior(self, x, t):
            return np.ones((len(x), 1))

    assert P.satisfies(Model(), P.LabelledScoreModel)
    P.require(Model(), P.ConditionalDenoiser)
    assert Model.calls == 0
