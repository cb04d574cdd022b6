"""The map library the hub serves is the one package.json names, committed so that a plain install serves it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hub.web.security import content_security_policy

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "hub" / "web" / "static" / "vendor" / "leaflet"
INSTALLED = ROOT / "node_modules" / "leaflet"
FILES = ("leaflet.js", "leaflet.css", "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png",
         "images/layers.png", "images/layers-2x.png")  # fmt: skip


def test_the_committed_copy_is_the_version_package_json_names() -> None:
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]["leaflet"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), "an exact version, so that the copy can be compared"
    banner = (VENDORED / "leaflet.js").read_text()[:200]
    assert f"Leaflet {wanted}," in banner
    assert (VENDORED / "LICENSE").is_file()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/leaflet"]["version"] == wanted


def test_the_committed_copy_equals_the_installed_package() -> None:
    # `make test` installs package.json's packages first (npm ci), Leaflet among them.
    assert INSTALLED.is_dir(), "node_modules/leaflet is missing: run npm ci"
    for name in FILES:
        assert (VENDORED / name).read_bytes() == (INSTALLED / "dist" / name).read_bytes(), name
    assert (VENDORED / "LICENSE").read_bytes() == (INSTALLED / "LICENSE").read_bytes()


def test_pages_may_load_tiles_from_the_tile_server_only() -> None:
    policy = content_security_policy("https://tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.example.org;" in policy
    assert "img-src 'self' data: https://*.tile.example.org;" in content_security_policy(
        "https://{s}.tile.example.org/{z}/{x}/{y}.png"
    )
    assert "img-src 'self' data:;" in content_security_policy("")
