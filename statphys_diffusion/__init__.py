"""statphys_diffusion: the statistical physics of generative diffusion, exact and tested.

Conventions: x_t = alpha_t x_0 + sigma_t eps, points are rows (M, d), images are rows in (C, H, W)
order, time runs forward (t = 0 is data), entropies in nats. The index below lists every public
name by concept, one line each; the torch side is :mod:`statphys_diffusion.nets`, the property-
testing helpers :mod:`statphys_diffusion.testing`, the data loaders :mod:`statphys_diffusion.datasets`.

Schedules and conventions
-------------------------
Schedule                   the forward process: alpha_t, sigma_t, their derivatives, snr and its inverse
OrnsteinUhlenbeck          alpha = e^-t, sigma^2 = 1 - e^-2t (the physics papers' convention)
VPSDE                      variance-preserving SDE with linear beta(t) (Song et al. 2021)
DiscreteSchedule           DDPM steps from alphas_cumprod (linear, cosine, diffusers' own)
VarianceExploding          alpha = 1, sigma = t
FlowMatching               alpha = 1 - t, sigma = t (rectified flow)
match_time                 the time of equal snr in another schedule, and the state scale
MatchedTime                result of match_time: t and scale
edm_sigma_of_time          EDM noise level sigma_t / alpha_t
time_of_edm_sigma          its inverse
ddpm_index_to_time         DDPM index k to the package's time
time_to_ddpm_index         the package's time to a DDPM index
convert_prediction         eps / x0 / v / score predictions into one another
denoiser_from_score        Tweedie: D_t(x) = (x + sigma^2 s_t(x)) / alpha
PREDICTION_KINDS           the prediction names convert_prediction knows

Exact models
------------
GaussianMixture            isotropic / diagonal / full / low-rank mixtures: exact score, denoiser, posteriors, Hessian
EmpiricalDistribution      a point cloud: the score a perfectly trained network would learn
LinearManifold             Gaussian data on a linear subspace (Woodbury, O(d m) per point)
MixtureComponents          read-only view of a mixture's components
Draws                      samples of (x_0, x_t, component, label) at a time t
ShardedEmpirical           the empirical model of shards (files or arrays), in this process or on a Dask cluster
ShardedLocalModel          LS / ELS of training images held in shards (this process or Dask), merged exactly
ShardLost                  raised when a scattered shard is lost with its Dask worker
write_shards               split a training set into shard-XXXXX.npy files for ShardedEmpirical

Generalising analytic models (what a convolutional network computes)
--------------------------------------------------------------------
LocalEmpirical             LS: each pixel a posterior mean over training patches at its position (Kamb & Ganguli)
EquivariantLocalEmpirical  ELS: the same over all patches at all positions, circular borders
PatchPosteriorAverage      PSPC: overlapping crop posterior means averaged per pixel (Niedoba et al.)
DataDrivenLocalEmpirical   empirical posterior over receptive fields from the data's Wiener filter (Lukoianov et al.)
GaussianFlow               the data's Gaussian: closed-form probability flow, teleportation (Wang & Vastola)
explained_variance         1 - E|s - s_ref|^2 / E|s|^2 per noise level (a network against the Gaussian)
ExplainedVariance          result of explained_variance
calibrate_patch_size       per noise level, the patch size closest to a network's denoiser
PatchCalibration           result of calibrate_patch_size; as_function() gives k(t)
sample_agreement           network and model from identical noise: per-sample r^2, median, fraction above 0.8
SampleAgreement            result of sample_agreement
per_sample_r2              r^2 of each sample against a reference sample, over its pixels
flow_log_likelihood        log p_t(x) of any model with Hessian-vector products, by its probability-flow ODE
r2_intervals               median r^2 and fraction above a threshold, with bootstrap intervals

Protocols (what analysis functions need of a model)
---------------------------------------------------
Labelled                   has classes (None when unlabelled)
DenoiseFunction            denoise(x, t) only
ScoreFunction              schedule and score(x, t)
Denoiser                   schedule and denoise(x, t)
ScoreModel                 schedule, dim, score, denoise
ConditionalDenoiser        a score model with classes and denoise(x, t, y=c)
LabelledScoreModel         a conditional model with a pointwise class_posterior(x, t)
CurvatureModel             a score model with Hessian-vector products hvp(x, t, v)
ExactMixture               an exact mixture's full interface (components, log_prob, Hessian, moments)
Moments                    mean() and covariance() of the data
Samplable                  sample(n, t, rng=...)
require                    check a model against a protocol, with an error naming what is missing
satisfies                  the same test as a bool

Sampling
--------
EulerMaruyama              reverse SDE, Euler-Maruyama
Heun                       probability-flow ODE, Heun (EDM's second-order step)
DDPMAncestral              DDPM ancestral steps between any times (Ho et al. 2020)
DDIM                       DDIM steps, eta in [0, 1] (Song, Meng & Ermon 2021)
SampleResult               a sampler's output: final points, grid, trajectory, schedule
initial_noise              the standard start N(0, (alpha^2 + sigma^2) I)
time_grid                  decreasing grid, uniform in t or EDM's in sigma
ddpm_time_sequence         the few-step grids of Raya & Ambrogioni (2023)
diffusers_variance         the DDPM variance of a diffusers scheduler configuration

Semantic decisions and information (result 1)
---------------------------------------------
entropy_rate               dH(Y | X_t)/dt with per-class peaks (exact models; networks by joint chains)
EntropyRate                result of entropy_rate and track_entropy_rate
track_entropy_rate         the entropy rate of a posterior tracked along chains
OnlineClassifier           generate with DDPM steps and track p(c | x_n) by Bayes' rule
OnlineTrack                chains and the tracked class posterior
conditional_entropy        H(Y | X_t) by quadrature or Monte Carlo
mutual_information         I(Y; X_t) = H(Y) - H(Y | X_t)
mutual_information_immse   I(Y; X_t) by the I-MMSE identity (Guo, Shamai & Verdu)
EntropyEstimate            result of the entropy and information estimators

Associative memory: memorisation and spurious states (result 2)
---------------------------------------------------------------
classify_samples           memorised / spurious / generalised samples (Pham et al. 2025)
SampleClassification       result of classify_samples
recovery_probability       does noising to t and denoising return a sample to itself?
recovery_time              the largest t from which a sample is recovered with probability p
RecoveryTime               result of recovery_time
relative_energy            energy difference of two points under -log p_t
attractor_census           fixed points of the denoiser iteration, their basins and stability
AttractorCensus            result of attractor_census
nearest_neighbours         k nearest training points (streamed, GEMM distances)
NearestNeighbours          result of nearest_neighbours
memorized_fraction         fraction of samples with nearest-neighbour ratio below a threshold
MemorizedFraction          result of memorized_fraction with its interval
trajectory_collapse_times  when each chain commits to its nearest training point
TrajectoryCollapse         result of trajectory_collapse_times

Guidance (result 3)
-------------------
DynamicNegativeGuidance    time- and state-dependent negative guidance (Koulischer et al. 2025)
NegativePrompting          constant negative guidance (baseline)
SafeLatentDiffusion        safe latent diffusion guidance (Schramowski et al. 2023, baseline)

Collapse and lost dimensions (result 4)
---------------------------------------
collapse_time              when the empirical model collapses on training points (Biroli et al. 2024)
collapse_snr               the same threshold in snr
posterior_collapse         the posterior over training points against t
CollapseCurve              result of posterior_collapse
excess_entropy             the excess entropy of the empirical model over its Gaussian
ExcessEntropy              result of excess_entropy
geometric_memorization     per-direction collapse of data on a manifold (Achilli et al. 2024)
GeometricMemorization      result of geometric_memorization
direction_critical_n       the dataset size at which a direction is kept
direction_critical_time    the time at which a direction collapses
tangent_jacobian           the denoiser's Jacobian along tangent and normal directions
TangentJacobian            result of tangent_jacobian
manifold_dimension         latent dimension from the spectrum of the score's Jacobian
ManifoldDimension          result of manifold_dimension
covariance_spectrum        eigenvalues of a data covariance, streamed
CovarianceSpectrum         result of covariance_spectrum

Symmetry breaking and late initialisation (result 5)
----------------------------------------------------
symmetry_breaking_time     when the central fixed point of the reverse dynamics loses stability
SymmetryBreaking           result of symmetry_breaking_time
speciation_time            t_S from the top covariance eigenvalue (Biroli et al. 2024)
two_delta_critical_alpha2  closed form of the critical alpha^2 for two deltas
two_delta_broken_fixed_points  the broken fixed points for two deltas
central_branch             the central fixed point followed by continuation
CentralBranch              result of central_branch
gaussian_instability_time  the same instability for a Gaussian of the data
cloning_agreement          speciation measured by cloning trajectories
exact_cloning_agreement    the same with exact samples of p_t
CloningResult              result of cloning_agreement
ExactCloning               result of exact_cloning_agreement
DYNAMICS                   the dynamics fixed points are taken for: sde, ode, potential
stiffness                  a_t in the fixed-point equation a_t x + s_t(x) = 0
potential                  u_t = -log p_t
fixed_point_residual       F(x) = a_t x + s_t(x)
central_fixed_point        Newton solve for the central fixed point
track_central_fixed_point  the central fixed point over a grid of times
fixed_points_1d            all fixed points of a 1-D model with their stability
FixedPoints                result of fixed_points_1d
top_hessian_eigenpairs     top eigenpairs of the Hessian of log p_t
EigenPairs                 eigenvalues and eigenvectors
stability_eigenvalues      the drift's stability eigenvalues
gaussian_late_init         the Gaussian the linear phase produces (late initialisation)
LateInitGaussian           result of gaussian_late_init: a Gaussian start
late_start_scan            sample quality against the late start time
LateStartScan              result of late_start_scan
critical_start             the critical start of a scan by a stated rule

Networks and their regime
-------------------------
regime_map                 memorising / generalising / not converged at each noise level
RegimeMap                  result of regime_map
REGIMES                    the regime names

Metrics
-------
frechet_distance           Frechet distance between two samples' features
frechet_distance_gaussian  Frechet distance between two Gaussians
sliced_wasserstein         sliced Wasserstein distance
wasserstein_1d             exact W1 between two 1-D samples

Citing
------
cite                       BibTeX of the package and of the papers behind what this process used

Sweeps
------
run_sweep                  independent jobs, locally or on a Dask cluster, cached and resumable
config_hash                the hash that keys a configuration
JobError                   a failed job under errors="collect"
"""

import sys as _sys

from .agreement import *  # noqa: F403
from .citations import *  # noqa: F403
from .conventions import *  # noqa: F403
from .empirical import *  # noqa: F403
from .flow_likelihood import *  # noqa: F403
from .gaussian_linear import *  # noqa: F403
from .guidance import *  # noqa: F403
from .local import *  # noqa: F403
from .manifold import *  # noqa: F403
from .metrics import *  # noqa: F403
from .mixture import *  # noqa: F403
from .nearest import *  # noqa: F403
from .online_posterior import *  # noqa: F403
from .protocols import *  # noqa: F403
from .regime import *  # noqa: F403
from .samplers import *  # noqa: F403
from .schedules import *  # noqa: F403
from .sharded import *  # noqa: F403
from .spectrum import *  # noqa: F403
from .sweep import *  # noqa: F403
from .theory import *  # noqa: F403

__version__ = "0.1.0"

# each module declares its public names in its own __all__; the package exports their union
_MODULES = (
    "agreement",
    "citations",
    "conventions",
    "empirical",
    "flow_likelihood",
    "gaussian_linear",
    "guidance",
    "local",
    "manifold",
    "metrics",
    "mixture",
    "nearest",
    "online_posterior",
    "protocols",
    "regime",
    "samplers",
    "schedules",
    "sharded",
    "spectrum",
    "sweep",
    "theory",
)
__all__ = [name for module in _MODULES for name in _sys.modules[f"{__name__}.{module}"].__all__]
