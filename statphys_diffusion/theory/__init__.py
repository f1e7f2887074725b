"""Theory modules, one per result of DESIGN.md; they use only the score-model protocol."""

from .associative_memory import (
    RecoveryTime,
    SampleClassification,
    classify_samples,
    recovery_probability,
    recovery_time,
    relative_energy,
)
from .attractors import AttractorCensus, attractor_census
from .collapse import CollapseCurve, ExcessEntropy, collapse_snr, collapse_time, excess_entropy, posterior_collapse
from .entropy_rate import EntropyRate, entropy_rate
from .geometric import (
    GeometricMemorization,
    TangentJacobian,
    direction_critical_n,
    direction_critical_time,
    geometric_memorization,
    tangent_jacobian,
)
from .immse import mutual_information_immse
from .information import EntropyEstimate, conditional_entropy, mutual_information
from .late_init import LateInitGaussian, gaussian_late_init
from .manifold_dimension import ManifoldDimension, manifold_dimension
from .symmetry_breaking import (
    DYNAMICS,
    CloningResult,
    SymmetryBreaking,
    central_fixed_point,
    cloning_agreement,
    exact_cloning_agreement,
    fixed_point_residual,
    fixed_points_1d,
    potential,
    speciation_time,
    stability_eigenvalues,
    stiffness,
    symmetry_breaking_time,
    top_hessian_eigenpairs,
    track_central_fixed_point,
    two_delta_broken_fixed_points,
    two_delta_critical_alpha2,
)

__all__ = [
    "ManifoldDimension",
    "manifold_dimension",
    "ExcessEntropy",
    "excess_entropy",
    "RecoveryTime",
    "SampleClassification",
    "classify_samples",
    "recovery_probability",
    "recovery_time",
    "relative_energy",
    "TangentJacobian",
    "tangent_jacobian",
    "GeometricMemorization",
    "geometric_memorization",
    "direction_critical_n",
    "direction_critical_time",
    "AttractorCensus",
    "attractor_census",
    "CollapseCurve",
    "collapse_snr",
    "collapse_time",
    "posterior_collapse",
    "mutual_information_immse",
    "EntropyRate",
    "entropy_rate",
    "EntropyEstimate",
    "conditional_entropy",
    "mutual_information",
    "CloningResult",
    "cloning_agreement",
    "exact_cloning_agreement",
    "LateInitGaussian",
    "gaussian_late_init",
    "DYNAMICS",
    "SymmetryBreaking",
    "central_fixed_point",
    "fixed_point_residual",
    "fixed_points_1d",
    "potential",
    "speciation_time",
    "stability_eigenvalues",
    "stiffness",
    "symmetry_breaking_time",
    "top_hessian_eigenpairs",
    "track_central_fixed_point",
    "two_delta_broken_fixed_points",
    "two_delta_critical_alpha2",
]
