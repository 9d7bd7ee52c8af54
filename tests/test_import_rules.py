"""The one-way dependencies of the layout (docs/architecture.md): the numerics import no
service, the app never imports the workers. Every import statement counts, also one inside a
function, since a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("app", "workers", "fastapi", "starlette", "dash", "celery", "kombu", "sqlalchemy")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; relative imports resolved to absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("package", ["physics", "models"])
def test_the_numerics_import_no_service(package):
    assert violations(package, SERVICES) == []


def test_the_app_never_imports_the_workers():
    assert violations("app", ("workers",)) == []


def test_the_rule_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    # A checker that missed these would pass the tests above whatever the code did.
    package = tmp_path / "physics" / "sub"
    package.mkdir(parents=True)
    (package / "mod.py").write_text(
        "def f():\n    import app.jobs\n    from workers import tasks\nfrom . import other\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert violations("physics", SERVICES) == [
        "physics/sub/mod.py:2 imports app.jobs",
        "physics/sub/mod.py:3 imports workers",
    ]
    assert ("physics.sub", 4) in [(m, line) for line, m in imported_modules(package / "mod.py")]
