"""The command line: `list` shows the parameters; `run` refuses bad input before any notebook executes."""

import subprocess
import sys
from pathlib import Path

import pytest

import ihcore.book.build
from ihcore.book.chapters import CHAPTERS, FROM_SCRATCH
from ihcore.book.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "_build" / "executed"


def ihcore_cli(*args):
    return subprocess.run([sys.executable, "-m", "ihcore", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # a hang guard, not a timing assertion


def executed_snapshot():
    """Every path under _build/executed with its modification time (a rerun would overwrite)."""
    if not EXECUTED.exists():
        return {}
    return {path: path.stat().st_mtime_ns for path in EXECUTED.rglob("*")}


def test_list_shows_every_chapter_and_parameter_default():
    result = ihcore_cli("list")
    assert result.returncode == 0
    for chapter in CHAPTERS.values():
        assert chapter.slug in result.stdout
        for parameter in chapter.parameters.parameters:
            assert f"{parameter.name} = {parameter.default!r}" in result.stdout


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["intro-chapter", "-p", "steps", "-5"], ["steps = -5", "[1, 200000]"]),
        (["from-scratch", "-p", "n_heads", "two"], ["n_heads = 'two'", "[1, 16]"]),
        (["from-scratch", "-p", "stepz", "5"], ["stepz", *FROM_SCRATCH.parameters.names()]),
        (["from-scratch", "-p", "n_heads", "3"], ["d_model must be divisible by n_heads"]),
        (["from_scratch"], ["'from_scratch'", *CHAPTERS]),
    ],
    ids=["out-of-range", "wrong-type", "unknown-parameter", "failed-check", "unknown-chapter"],
)
def test_run_with_bad_input_fails_with_a_message_before_executing(args, fragments):
    before = executed_snapshot()
    result = ihcore_cli("run", *args)
    assert result.returncode != 0
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert executed_snapshot() == before


@pytest.fixture
def run_chapter_calls(monkeypatch):
    """Replace ihcore.book.build.run_chapter, which would execute a notebook, by a recorder."""
    calls = []
    monkeypatch.setattr(ihcore.book.build, "run_chapter", lambda chapter, values, **options: calls.append((chapter, values)))
    return calls


def test_run_passes_typed_overrides_to_run_chapter(run_chapter_calls):
    assert main(["run", "intro-chapter", "-p", "lr", "1e-2", "-p", "show_progress", "False"]) == 0
    assert run_chapter_calls == [(FROM_SCRATCH, {"lr": 0.01, "show_progress": False})]


def test_run_with_an_out_of_range_value_exits_2_without_running(run_chapter_calls, capsys):
    assert main(["run", "from-scratch", "-p", "steps", "0"]) == 2
    assert "steps = 0" in capsys.readouterr().err
    assert run_chapter_calls == []
