"""What to cite: every public function or class declares the papers behind it once, and :func:`cite`
returns the BibTeX of those used in this process.

``@references("kamb2024")`` on a function records the key when the function is called; on a class,
when an instance is made. :func:`cite` returns the entries recorded so far (or all of them), always
preceded by the package's own entry (from ``CITATION.cff``'s title and version).
"""

from __future__ import annotations

import functools

__all__ = ["cite"]

# BibTeX of the papers the package computes from: titles, venues and arXiv numbers as the design notes
# and CITATION.cff give them; authors by family name where the package records no given names
_BIBTEX = {
    "handke2025": """@article{handke2025,
  title = {Measuring Semantic Information Production in Generative Diffusion Models},
  author = {Handke and Koulischer and Raya and Ambrogioni},
  year = {2025},
  eprint = {2506.10433},
  archivePrefix = {arXiv}
}""",
    "pham2025": """@article{pham2025,
  title = {Memorization to Generalization: Emergence of Diffusion Models from Associative Memory},
  author = {Pham and Raya and Negri and Zaki and Ambrogioni and Krotov},
  year = {2025}
}""",
    "koulischer2025": """@inproceedings{koulischer2025,
  title = {Dynamic Negative Guidance of Diffusion Models},
  author = {Koulischer and Deleu and Raya and Demeester and Ambrogioni},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2025}
}""",
    "achilli2024": """@article{achilli2024,
  title = {Losing dimensions: Geometric memorization in generative diffusion},
  author = {Achilli and Ventura and Silvestri and Pham and Raya and Krotov and Lucibello and Ambrogioni},
  year = {2024},
  eprint = {2410.08727},
  archivePrefix = {arXiv}
}""",
    "raya2023": """@inproceedings{raya2023,
  title = {Spontaneous symmetry breaking in generative diffusion models},
  author = {Raya, Gabriel and Ambrogioni, Luca},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2023}
}""",
    "biroli2024": """@article{biroli2024,
  title = {Dynamical regimes of diffusion models},
  author = {Biroli, Giulio and Bonnaire, Tony and de Bortoli, Valentin and M{\\'e}zard, Marc},
  year = {2024}
}""",
    "kamb2024": """@inproceedings{kamb2024,
  title = {An analytic theory of creativity in convolutional diffusion models},
  author = {Kamb, Mason and Ganguli, Surya},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2025},
  eprint = {2412.20292},
  archivePrefix = {arXiv}
}""",
    "niedoba2024": """@inproceedings{niedoba2024,
  title = {Towards a mechanistic explanation of diffusion model generalization},
  author = {Niedoba, Matthew and Zwartsenberg, Berend and Murphy, Kevin and Wood, Frank},
  booktitle = {International Conference on Machine Learning (ICML)},
  year = {2025},
  eprint = {2411.19339},
  archivePrefix = {arXiv}
}""",
    "lukoianov2025": """@inproceedings{lukoianov2025,
  title = {Locality in Image Diffusion Models Emerges from Data Statistics},
  author = {Lukoianov, Artem and Yuan, Chenyang and Solomon, Justin and Sitzmann, Vincent},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2025},
  eprint = {2509.09672},
  archivePrefix = {arXiv}
}""",
    "wang2023": """@article{wang2023,
  title = {The Hidden Linear Structure in Score-Based Models and its Application},
  author = {Wang, Binxu and Vastola, John J.},
  year = {2023},
  eprint = {2311.10892},
  archivePrefix = {arXiv}
}""",
    "wang2024": """@article{wang2024,
  title = {The Unreasonable Effectiveness of Gaussian Score Approximation for Diffusion Models and its Applications},
  author = {Wang, Binxu and Vastola, John J.},
  year = {2024},
  eprint = {2412.09726},
  archivePrefix = {arXiv}
}""",
    "ho2020": """@inproceedings{ho2020,
  title = {Denoising Diffusion Probabilistic Models},
  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2020}
}""",
    "song2021ddim": """@inproceedings{song2021ddim,
  title = {Denoising Diffusion Implicit Models},
  author = {Song, Jiaming and Meng, Chenlin and Ermon, Stefano},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021}
}""",
    "song2021sde": """@inproceedings{song2021sde,
  title = {Score-Based Generative Modeling through Stochastic Differential Equations},
  author = {Song, Yang and Sohl-Dickstein, Jascha and Kingma, Diederik P. and Kumar, Abhishek and
            Ermon, Stefano and Poole, Ben},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021}
}""",
    "karras2022": """@inproceedings{karras2022,
  title = {Elucidating the Design Space of Diffusion-Based Generative Models},
  author = {Karras, Tero and Aittala, Miika and Aila, Timo and Laine, Samuli},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2022}
}""",
    "guo2005": """@article{guo2005,
  title = {Mutual information and minimum mean-square error in Gaussian channels},
  author = {Guo, Dongning and Shamai, Shlomo and Verd{\\'u}, Sergio},
  journal = {IEEE Transactions on Information Theory},
  year = {2005}
}""",
    "kong2023": """@inproceedings{kong2023,
  title = {Information-Theoretic Diffusion},
  author = {Kong, Xianghao and Brekelmans, Rob and Ver Steeg, Greg},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2023}
}""",
    "schramowski2023": """@inproceedings{schramowski2023,
  title = {Safe Latent Diffusion: Mitigating Inappropriate Degeneration in Diffusion Models},
  author = {Schramowski, Patrick and Brack, Manuel and Deiseroth, Bj{\\"o}rn and Kersting, Kristian},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2023}
}""",
}

_USED: set[str] = set()


def references(*keys: str):
    """Decorator: the function (or class) computes from the papers ``keys`` (keys of the registry)."""
    unknown = [k for k in keys if k not in _BIBTEX]
    if unknown:
        raise ValueError(f"unknown reference keys {unknown}")

    def decorate(obj):
        if isinstance(obj, type):
            init = obj.__init__

            @functools.wraps(init)
            def __init__(self, *args, **kwargs):
                _USED.update(keys)
                init(self, *args, **kwargs)

            obj.__init__ = __init__
            obj.__references__ = keys
            return obj

        @functools.wraps(obj)
        def wrapper(*args, **kwargs):
            _USED.update(keys)
            return obj(*args, **kwargs)

        wrapper.__references__ = keys
        return wrapper

    return decorate


def _package_entry() -> str:
    from . import __version__

    return (
        "@software{statphys_diffusion,\n"
        "  title = {statphys_diffusion: the statistical physics of generative diffusion, exact and tested},\n"
        "  author = {{The statphys_diffusion authors}},\n"
        f"  version = {{{__version__}}},\n"
        "  note = {See CITATION.cff}\n"
        "}"
    )


def cite(*, every: bool = False) -> str:
    """BibTeX for the package and the papers behind the functions and classes used in this process.

    Parameters
    ----------
    every : bool
        All the papers the package computes from, used or not.

    Examples
    --------
    >>> import statphys_diffusion as sd
    >>> "@software{statphys_diffusion" in sd.cite()
    True
    """
    keys = sorted(_BIBTEX) if every else sorted(_USED)
    return "\n\n".join([_package_entry(), *(_BIBTEX[k] for k in keys)]) + "\n"
