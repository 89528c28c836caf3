"""The package's layout is its architecture: which folder may import which.

spine → nothing else of ihcore; each study (musat, wang, singh) → the spine only;
across → the spine and the studies; interop (the models in other tools) → the spine; book → anything. Only the book imports the book
(and the notebooks, which are not checked here). Imports are read from the source, so a
deferred import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ihcore"
FOLDERS = ("spine", "musat", "wang", "singh", "across", "interop", "book")
ALLOWED = {
    "spine": {"spine"},
    "musat": {"spine", "musat"},
    "wang": {"spine", "wang"},
    "singh": {"spine", "singh"},
    "across": {"spine", "musat", "wang", "singh", "across"},
    "interop": {"spine", "interop"},
    "book": set(FOLDERS),
}


def imported_folders(path: Path) -> dict[str, int]:
    """Folder of ihcore -> first line importing it, for every ``ihcore.<folder>`` import in ``path``."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "ihcore" and len(parts) > 1:
                found.setdefault(parts[1], node.lineno)
    return found


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_lives_in_a_folder():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == [], "modules outside the seven folders"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(FOLDERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layout(path):
    folder = path.relative_to(PACKAGE).parts[0]
    if folder in ("__init__.py", "__main__.py"):
        assert set(imported_folders(path)) <= {"book"}  # ``python -m ihcore`` is the book's command line
        return
    wrong = {f: line for f, line in imported_folders(path).items() if f not in ALLOWED[folder]}
    assert wrong == {}, f"{path.relative_to(PACKAGE)} may import only {sorted(ALLOWED[folder])}"


def test_the_checker_sees_deferred_and_dotted_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import ihcore.wang.phases\ndef f():\n    from ihcore import book\n    from ihcore.singh.subcircuits import x\n")
    assert imported_folders(source) == {"wang": 1, "book": 3, "singh": 4}
