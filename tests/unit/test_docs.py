"""The documentation site builds with --strict, and every repository file it names exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
# A path in backticks under one of the repository's top folders, as the pages name source files.
REPO_PATH = re.compile(r"`((?:hub|channels|workers|tests|deploy|bench|templates)/[^`\s]*)`")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # Not --quiet: it hides the warnings from the count that --strict fails on.
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


def test_site_builds_strictly(tmp_path: Path) -> None:
    built = build(REPO / "mkdocs.yml", tmp_path)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    pages = tmp_path / "docs"
    pages.mkdir()
    (pages / "index.md").write_text("# Start\n\n[weiter](fehlt.md), ![Bild](img/fehlt.png)\n", encoding="utf-8")
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:")[0]
    (tmp_path / "mkdocs.yml").write_text(config.replace("docs_dir: docs", f"docs_dir: {pages}"), encoding="utf-8")
    built = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert "fehlt.md" in built.stderr and "fehlt.png" in built.stderr


def test_named_repository_files_exist() -> None:
    missing = []
    for page in sorted(DOCS.rglob("*.md")):
        for path in REPO_PATH.findall(page.read_text(encoding="utf-8")):
            # Placeholders (`messages/<lang>/`, `{id}`, `…`) name a family of files, not one.
            if any(mark in path for mark in "<{*…"):
                continue
            if not (REPO / path).exists():
                missing.append(f"{page.relative_to(REPO)}: {path}")
    assert not missing, "pages name files that do not exist:\n" + "\n".join(missing)
