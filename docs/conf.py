"""Sphinx configuration: pydata theme, numpydoc, autosummary API reference generated from the package
index, an executed sphinx-gallery of examples/, offline MathJax (the site reads from a clean checkout
without network access)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import statphys_diffusion as sd  # noqa: E402

project = "statphys_diffusion"
author = "the statphys_diffusion developers"
release = sd.__version__
version = sd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.examples", "**/*.md5", "**/*.py", "**/*.ipynb", "**/*.zip", "**/*.pickle"]
templates_path = ["_templates"]
html_theme = "pydata_sphinx_theme"
html_title = f"statphys_diffusion {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}


def _api_page() -> str:
    """api.rst from the package docstring's index: one section per concept, an autosummary per section."""
    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of ``statphys_diffusion``, grouped by concept (the package docstring's index).",
        "",
        ".. currentmodule:: statphys_diffusion",
        "",
    ]
    doc = sd.__doc__.splitlines()
    i = 0
    while i < len(doc):
        line = doc[i]
        if i + 1 < len(doc) and re.fullmatch(r"-{3,}", doc[i + 1].strip()) and line.strip():
            lines += [line, "-" * len(line), "", ".. autosummary::", "   :toctree: generated", ""]
            i += 2
            while i < len(doc) and doc[i].strip() and not re.fullmatch(r"-{3,}", doc[min(i + 1, len(doc) - 1)]):
                name = doc[i].split()[0]
                if name in sd.__all__:
                    lines.append(f"   {name}")
                i += 1
            lines.append("")
            continue
        i += 1
    lines += [
        "Torch side",
        "----------",
        "",
        ".. currentmodule:: statphys_diffusion.nets",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "",
    ]
    import statphys_diffusion.nets as nets

    lines += [f"   {n}" for n in nets.__all__] + [""]
    return "\n".join(lines)


(Path(__file__).parent / "api.rst").write_text(_api_page())


def _experiments_page() -> str:
    """user_guide/experiments.rst: every pre-registered experiment (validation/preregistrations/), its status,
    its reference check and, once its full run is committed, its verdict, from the committed JSON alone."""
    import hashlib
    import json

    root = Path(__file__).resolve().parents[1]
    pre = root / "validation" / "preregistrations"
    lines = [
        "Pre-registered experiments",
        "==========================",
        "",
        "Generated when the site is built, from ``validation/preregistrations/`` and the committed outputs in",
        "``figures/`` (issue 34's experiment shape: ``validation/README.md``). A verdict appears only once a full",
        "run's JSON is committed; its pre-registration hash is checked against the file as it is now.",
        "",
    ]
    for md in sorted(pre.glob("*.md")):
        name = md.stem
        text = md.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        digest = hashlib.sha256(md.read_bytes()).hexdigest()
        status = "draft" if "Status: draft" in text else "registered"
        where = f"``validation/preregistrations/{name}.md``"
        lines += [title, "-" * len(title), "", f"* pre-registration: {where} ({status})"]
        ref = pre / f"{name}_reference_check.json"
        if ref.is_file():
            rc = json.loads(ref.read_text())
            rc = rc.get("reference_check", rc)
            outcomes = ", ".join(
                f"{k}: {v['verdict']['outcome']}" for k, v in rc.items() if isinstance(v, dict) and "verdict" in v
            )
            lines.append(
                f"* reference check (exact stand-ins for the network): {outcomes or 'committed'}; "
                f"``validation/preregistrations/{name}_reference_check.json``"
            )
        else:
            lines.append("* reference check: not committed yet")
        out = root / "figures" / f"{name}.json"
        summary = json.loads(out.read_text()) if out.is_file() else None
        if summary is None or "provenance" not in summary:
            lines += ["* full run: not committed yet", ""]
            continue
        prov = summary["provenance"]
        same = prov.get("preregistration_sha256") == digest
        lines.append(
            f"* full run: written by commit ``{prov.get('git_commit', '?')[:10]}`` in "
            f"{prov.get('seconds', 0) / 60:.0f} minutes (jobs taken from its cache not counted); "
            f"pre-registration hash {'matches' if same else 'DIFFERS from'} the file"
        )
        verdicts = [("", summary["verdict"])] if "verdict" in summary else []
        verdicts += [
            (f" ({n.get('key', n.get('network', '?'))}, N = {n.get('n_train', '?')})", n["verdict"])
            for n in summary.get("networks", [])
            if "verdict" in n
        ]
        for label, v in verdicts:
            lines.append(f"* verdict{label}: **{v['outcome']}** (stability {v['stability']:.2f}): {v['reason']}")
        if "call" in summary:  # a descriptive experiment's pre-stated call (dimension_twins)
            lines.append(f"* call: **{summary['call']}**: {summary.get('reason', '')}")
        if isinstance(summary.get("part_B"), dict):  # spurious_samples' description of its samples
            lines.append(f"* what the spurious samples are: **{summary['part_B']['call']}**")
        for png in sorted((root / "figures").glob(f"{name}*.png")):
            lines += ["", f".. image:: ../../figures/{png.name}", "   :width: 90%"]
        lines.append("")
    return "\n".join(lines)


(Path(__file__).parent / "user_guide" / "experiments.rst").write_text(_experiments_page())

# the network results: the claim and the command are stated here once; every number, criterion, gate and
# verdict is read from the committed JSON when the site is built (issue 35: no number copied by hand)
RESULTS = (
    ("network_entropy", "Result 1: semantic decisions as entropy-rate peaks (Handke et al.)",
     "python validation/network_entropy.py --continue-steps 19000"),
    ("network_memorization", "Result 2: diffusion models as associative memories (Pham et al.)",
     "python validation/network_memorization.py --budgets 8000 4000 --window 3 --also 512 128 256 --second-window 1"),
    ("network_guidance", "Result 3: dynamic negative guidance on a trained network (Koulischer et al.)",
     "python validation/network_guidance.py"),
    ("network_dimension", "Result 4: the manifold dimension of image networks (Achilli et al.)",
     "python validation/network_dimension.py --workers 2"),
    ("geometric_synthetic", "Result 4 in the paper's synthetic setting (Achilli et al.)",
     "python validation/geometric_synthetic.py --steps 200000 --workers 2"),
    ("network_symmetry", "Result 5: symmetry breaking and Gaussian late initialisation (Raya & Ambrogioni)",
     "python validation/network_symmetry.py"),
    ("network_regime", "Where the package's networks stand: the regime map", "python validation/network_regime.py"),
)  # fmt: skip
# keys that are not measurements (the provenance block included: its commit, command line and config)
_SKIP = {
    "quick",
    "version",
    "package_version",
    "config",
    "results",
    "criterion",
    "verdict",
    "train_config",
    "provenance",
}


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 8:
        return f"[{', '.join(_value(x) for x in v[:4])}, ... {len(v)} values]"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def _flat(d: dict, prefix: str = "") -> list:
    """(key, value) rows, nested dicts opened one level (``gates.classifier_agreement``)."""
    rows = []
    for k, v in d.items():
        if k in _SKIP or k.startswith("seconds"):
            continue
        if isinstance(v, dict) and not prefix:
            rows += _flat(v, f"{k}.")
        else:
            rows.append((prefix + k, v))
    return rows


def _result_page(name: str, title: str, command: str) -> str | None:
    """One result's page from its committed JSON (None when the JSON is not committed)."""
    import json

    root = Path(__file__).resolve().parents[1]
    path = root / "figures" / f"{name}.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    lines = [title, "=" * len(title), "", f"Command: ``{command}``; output ``figures/{name}.json``.", ""]
    if d.get("criterion"):
        import textwrap

        wrapped = textwrap.wrap(" ".join(str(d["criterion"]).split()), 88)
        lines += ["Criterion (stated before the run)::", ""] + ["   " + w for w in wrapped] + [""]
    if d.get("verdict") is not None:
        lines += [f"**Verdict: {d['verdict']}**", ""]
    rows = _flat(d)
    if rows:
        lines += [".. list-table::", "   :widths: 30 70", ""]
        for k, v in rows:
            lines += [f"   * - ``{k}``", f"     - {_value(v)}"]
        lines.append("")
    if (root / "figures" / f"{name}.png").is_file():
        lines += [f".. image:: ../../../figures/{name}.png", "   :width: 100%", ""]
    return "\n".join(lines)


def _write_result_pages() -> None:
    """user_guide/results/<name>.rst, one per committed result, and their index page network_results.rst."""
    here = Path(__file__).parent / "user_guide"
    (here / "results").mkdir(exist_ok=True)
    names = []
    for name, title, command in RESULTS:
        page = _result_page(name, title, command)
        if page is not None:
            (here / "results" / f"{name}.rst").write_text(page)
            names.append(name)
    index = [
        "Results on trained networks (generated)",
        "=======================================",
        "",
        "One page per result, generated when the site is built from the committed outputs in ``figures/``:",
        "each shows its script's criterion, gates, verdict and measured values as the JSON holds them (no",
        "number is typed by hand), the command that regenerates them and the figure. The narrative record of",
        "these runs is :doc:`validation`; the pre-registered experiments of issue 34 are on :doc:`experiments`.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ] + [f"   results/{n}" for n in names]
    (here / "network_results.rst").write_text("\n".join(index) + "\n")


_write_result_pages()


# Offline math: MathJax's files come from the ``sphinx-mathjax-offline`` distribution (its module name
# has a hyphen and cannot be imported as an extension), copied next to the pages after the build.
mathjax_path = "mathjax/tex-chtml.js"


def _mathjax_dir() -> Path:
    import importlib.metadata

    dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    entry = next(f for f in dist.files if str(f).endswith("static/mathjax/tex-chtml.js"))
    return Path(dist.locate_file(entry)).parent


def _copy_mathjax(app, exc):
    if exc is None:
        from sphinx.util.fileutil import copy_asset

        copy_asset(str(_mathjax_dir()), str(Path(app.outdir) / "_static" / "mathjax"))


def _plain_math(app, what, name, obj, options, lines):
    """The docstrings write plain-text formulas (|x - y|^2, x_{Omega_i}); reST would read |...| as a
    substitution: escape the bars, in place."""
    for i, line in enumerate(lines):
        if "|" in line:
            lines[i] = line.replace("\\|", "|").replace("|", "\\|")


def setup(app):
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-process-docstring", _plain_math, priority=400)
