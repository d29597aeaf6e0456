"""What the wheel holds, read from pyproject.toml without building it (.ci/package builds and installs it)."""

import tomllib
from pathlib import Path

from setuptools import find_packages

import made

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def wheel_packages() -> list[str]:
    """The packages setuptools puts in the wheel, found as the build finds them."""
    return find_packages(str(ROOT), include=SETUPTOOLS["packages"]["find"]["include"])


def test_every_folder_of_the_package_is_in_the_wheel_and_nothing_else():
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "made").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert set(wheel_packages()) == folders  # a folder without __init__.py would be left out silently
    assert not any(name.split(".")[0] in ("tests", "benchmarks") for name in wheel_packages())


def test_the_type_marker_ships_with_the_package():
    assert (ROOT / "made" / "py.typed").is_file()
    assert "py.typed" in SETUPTOOLS["package-data"]["made"]
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


def test_license_metadata_matches_the_license_file():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert [(ROOT / name).read_text().splitlines()[0] for name in project["license-files"]] == ["MIT License"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: the expression says it


def test_version_and_entry_point_come_from_the_package():
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "made.__version__"}
    headings = [line.split(" - ")[0] for line in (ROOT / "CHANGELOG.md").read_text().splitlines()]
    assert f"## [{made.__version__}]" in headings  # released, and said what (Keep a Changelog: "## [X] - date")
    module, function = PYPROJECT["project"]["scripts"]["made"].split(":")
    assert module == "made.cli" and callable(getattr(__import__(module, fromlist=[function]), function))
