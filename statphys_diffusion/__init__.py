"""statphys_diffusion: the statistical physics of generative diffusion, exact and tested.

Public API: schedules, exact noisy data models, samplers and convention
converters. See README.md and DESIGN.md for conventions (x_t = alpha_t x_0 +
sigma_t eps, points are rows, time runs forward, entropies in nats).
"""

from .conventions import (
    convert_prediction,
    ddpm_index_to_time,
    edm_sigma_of_time,
    match_time,
    time_of_edm_sigma,
    time_to_ddpm_index,
)
from .empirical import EmpiricalDistribution
from .guidance import DynamicNegativeGuidance, NegativePrompting, SafeLatentDiffusion
from .manifold import LinearManifold
from .mixture import Draws, GaussianMixture
from .nearest import NearestNeighbours, memorized_fraction, nearest_neighbours, trajectory_collapse_times
from .online_posterior import OnlineClassifier, OnlineTrack
from .regime import REGIMES, RegimeMap, regime_map
from .schedules import (
    VPSDE,
    DiscreteSchedule,
    FlowMatching,
    OrnsteinUhlenbeck,
    Schedule,
    VarianceExploding,
)
from .sweep import config_hash, run_sweep
from .theory import (
    AttractorCensus,
    CollapseCurve,
    EntropyEstimate,
    EntropyRate,
    GeometricMemorization,
    LateInitGaussian,
    SymmetryBreaking,
    TangentJacobian,
    attractor_census,
    central_fixed_point,
    collapse_snr,
    collapse_time,
    conditional_entropy,
    direction_critical_n,
    direction_critical_time,
    entropy_rate,
    fixed_points_1d,
    gaussian_late_init,
    geometric_memorization,
    mutual_information,
    mutual_information_immse,
    posterior_collapse,
    speciation_time,
    stability_eigenvalues,
    symmetry_breaking_time,
    tangent_jacobian,
    top_hessian_eigenpairs,
    track_central_fixed_point,
)

__version__ = "0.1.0"

__all__ = [
    "REGIMES",
    "RegimeMap",
    "regime_map",
    "config_hash",
    "run_sweep",
    "NegativePrompting",
    "SafeLatentDiffusion",
    "DynamicNegativeGuidance",
    "TangentJacobian",
    "tangent_jacobian",
    "GeometricMemorization",
    "geometric_memorization",
    "direction_critical_n",
    "direction_critical_time",
    "AttractorCensus",
    "attractor_census",
    "NearestNeighbours",
    "nearest_neighbours",
    "memorized_fraction",
    "trajectory_collapse_times",
    "CollapseCurve",
    "collapse_snr",
    "collapse_time",
    "posterior_collapse",
    "OnlineClassifier",
    "OnlineTrack",
    "mutual_information_immse",
    "EntropyRate",
    "entropy_rate",
    "EntropyEstimate",
    "conditional_entropy",
    "mutual_information",
    "Schedule",
    "OrnsteinUhlenbeck",
    "VPSDE",
    "DiscreteSchedule",
    "VarianceExploding",
    "FlowMatching",
    "GaussianMixture",
    "EmpiricalDistribution",
    "LinearManifold",
    "Draws",
    "match_time",
    "edm_sigma_of_time",
    "time_of_edm_sigma",
    "ddpm_index_to_time",
    "time_to_ddpm_index",
    "convert_prediction",
    "symmetry_breaking_time",
    "SymmetryBreaking",
    "speciation_time",
    "central_fixed_point",
    "track_central_fixed_point",
    "fixed_points_1d",
    "stability_eigenvalues",
    "top_hessian_eigenpairs",
    "gaussian_late_init",
    "LateInitGaussian",
]
