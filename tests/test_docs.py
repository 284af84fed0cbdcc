"""The documentation builds (mkdocs --strict: no broken links, no missing pages, docstrings parse),
its generated pages match the code, and its pictures exist and stay small."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from samzoo.zoo.registry import list_models

REPO = Path(__file__).resolve().parents[1]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "scripts" / "docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                             "-d", str(site)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    zoo = (site / "reference" / "zoo" / "index.html").read_text()
    assert all(spec.name in zoo for spec in list_models())
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("models", "fetch", "segment", "finetune", "evaluate"):
        assert f"samzoo {command}" in cli
    assert "--scheduler" in cli and "--block" in cli
    api = (site / "reference" / "api" / "index.html").read_text()
    assert "run_batch" in api and "read_image" in api
    # every picture a page shows was built into the site
    for page in site.rglob("*.html"):
        for src in re.findall(r'<img [^>]*src="([^"]+)"', page.read_text()):
            assert (page.parent / src).resolve().is_file(), (page, src)


def test_pictures_exist_and_are_small():
    images = sorted((REPO / "docs" / "images").glob("*.png"))
    names = {p.name for p in images}
    assert {"automatic.png", "tiling.png", "blocks.png", "volume.png"} <= names
    for image in images:
        assert image.stat().st_size < 200_000, image
    pages = "".join(p.read_text() for p in (REPO / "docs").rglob("*.md"))
    for name in names:
        assert name in pages, f"{name} is not used by any page"


def test_nav_leaves_out_unwritten_pages(tmp_path):
    (tmp_path / "here.md").write_text("# here")
    nav = [{"Home": "here.md"}, {"Guides": [{"Missing": "missing.md"}, {"Zoo": "reference/zoo.md"}]},
           {"Only missing": [{"Gone": "gone.md"}]}]
    assert _hooks()._existing(nav, str(tmp_path)) == [{"Home": "here.md"}, {"Guides": [{"Zoo": "reference/zoo.md"}]}]


def test_generated_pages_follow_the_code():
    hooks = _hooks()
    zoo = hooks.zoo_page()
    assert all(f"`{spec.name}`" in zoo or f"**{spec.name}**" in zoo for spec in list_models())
    assert "usage: samzoo segment" in hooks.cli_page()
