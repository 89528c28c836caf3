"""requirements.txt and environment.yml pin the same exact versions, so pip and conda build one book."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXACT_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s=<>!~;,]+)$")


def requirements_txt():
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def environment_yml():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def environment_pip():
    return next(entry["pip"] for entry in environment_yml()["dependencies"] if isinstance(entry, dict))


def requirements(entries):
    """The package requirements among pip entries; options such as `-e .` are not pins."""
    return [entry for entry in entries if not entry.startswith("-")]


def pins(entries):
    """name -> version, names normalised as pip compares them (case, `-`, `_`, `.`)."""
    matches = [EXACT_PIN.match(entry) for entry in requirements(entries)]
    return {re.sub(r"[-_.]+", "-", m["name"]).lower(): m["version"] for m in matches if m}


@pytest.mark.parametrize("entries", [requirements_txt, environment_pip], ids=["requirements.txt", "environment.yml"])
def test_every_requirement_is_an_exact_pin(entries):
    assert [entry for entry in requirements(entries()) if not EXACT_PIN.match(entry)] == []


def test_requirements_and_environment_pin_the_same_versions():
    assert pins(requirements_txt()) == pins(environment_pip())


@pytest.mark.parametrize("name, version", [("torch", "2.13.0"), ("jupyter-book", "1.0.4.post1")])
def test_key_packages_are_pinned_to_the_tested_versions(name, version):
    assert pins(requirements_txt())[name] == version


def test_environment_asks_for_python_3_11():
    pythons = [entry for entry in environment_yml()["dependencies"] if str(entry).startswith("python")]
    assert len(pythons) == 1 and re.fullmatch(r"python==?3\.11(\.[0-9*]+)?", pythons[0])
