"""The README's and the user guide's Python examples run as written; the README stays a front door."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_blocks_run():
    blocks = _blocks(ROOT / "README.md")
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("page", sorted((ROOT / "docs" / "user_guide").glob("*.md")), ids=lambda p: p.name)
def test_user_guide_python_blocks_run(page):
    for block in _blocks(page):
        exec(compile(block, str(page), "exec"), {})


def test_readme_is_a_front_door_of_at_most_12_kb():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024
    assert "pip install -e . && statphys-diffusion predict" in text and "python -m pytest -q" in text
