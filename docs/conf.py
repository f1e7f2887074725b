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
            outcomes = ", ".join(f"{k}: {v['verdict']['outcome']}" for k, v in rc.items() if "verdict" in v)
            lines.append(f"* reference check (exact stand-ins for the network): {outcomes}")
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
            f"* full run: commit ``{prov.get('git_commit', '?')[:10]}``, {prov.get('seconds', 0) / 60:.0f} minutes; "
            f"pre-registration hash {'matches' if same else 'DIFFERS from'} the file"
        )
        verdicts = [summary["verdict"]] if "verdict" in summary else []
        verdicts += [n["verdict"] for n in summary.get("networks", []) if "verdict" in n]
        for v in verdicts:
            lines.append(f"* verdict: **{v['outcome']}** (stability {v['stability']:.2f}): {v['reason']}")
        for png in sorted((root / "figures").glob(f"{name}*.png")):
            lines += ["", f".. image:: ../../figures/{png.name}", "   :width: 90%"]
        lines.append("")
    return "\n".join(lines)


(Path(__file__).parent / "user_guide" / "experiments.rst").write_text(_experiments_page())

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
