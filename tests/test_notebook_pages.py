"""The notebooks as pages of the documentation, with their figures.

mkdocs-jupyter (mkdocs.yml) renders docs/notebooks/*.ipynb from the outputs they are committed
with (``make notebooks``), without executing them. ``mkdocs build --strict`` must give each a
page, in the navigation, holding at least one PNG figure (embedded or linked) and loading
nothing from the network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("posteriors", "zero_shot", "beyond")
PNG_IMAGE = re.compile(r"""<img\b[^>]*\bsrc=["'](data:image/png;base64,|[^"']+\.png["'])""")
REMOTE = re.compile(r"""<(script|link|img)\b[^>]*\b(src|href)=["'](https?:)?//""")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_shows_a_figure(site, name):
    page = site / "notebooks" / name / "index.html"
    assert page.is_file(), f"no page for docs/notebooks/{name}.ipynb"
    html = page.read_text(encoding="utf-8")
    assert PNG_IMAGE.search(html), f"{page} holds no PNG image"
    assert not REMOTE.search(html), "the page loads something from the network"


def test_notebook_pages_are_in_the_navigation(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        assert f'href="notebooks/{name}/"' in home
