"""The house's floors: arrows point down only.

The spec package (``prunespec``) imports neither the web side nor the worker nor TensorFlow; the engine
(``worker/engine``) imports the spec package but nothing of the web side; the web side never imports
TensorFlow and reaches the worker only where the CLI wires the two together.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Web-side modules allowed to import the worker: the CLI wires service and engine for local runs.
CLI_WIRING = {"backend/cli.py", "backend/client_cli.py"}
#: Known debt: the dataset catalog asks the engine's NumPy-only data package which image sets this
#: server holds (lazily, inside one function). It should move to the spec package's data directories.
KNOWN_DEBT = {"backend/service/catalog.py"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _violations(
    folder: str, forbidden: tuple[str, ...], allowed: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in allowed:
            continue
        for module in _imported_modules(path):
            if module.split(".")[0] in forbidden or any(module.startswith(f + ".") for f in forbidden):
                out.append(f"{relative} imports {module}")
    return out


def test_the_spec_package_imports_neither_side_nor_tensorflow() -> None:
    assert (
        _violations("prunespec", ("backend", "worker", "tensorflow", "keras", "sqlalchemy", "fastapi")) == []
    )


def test_the_engine_imports_no_web_side_database_or_celery_code() -> None:
    assert _violations("worker/engine", ("backend", "sqlalchemy", "fastapi", "celery")) == []


def test_the_web_side_reaches_the_worker_only_through_the_cli() -> None:
    assert _violations("backend", ("worker", "tensorflow", "keras"), CLI_WIRING | KNOWN_DEBT) == []


def test_importing_the_spec_package_and_the_app_loads_no_tensorflow() -> None:
    code = (
        "import sys\n"
        "import prunespec.spec, prunespec.costs, prunespec.presets\n"
        "import backend.app\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_service_index_names_every_module_of_the_service() -> None:
    service = ROOT / "backend" / "service"
    index = ast.get_docstring(ast.parse((service / "__init__.py").read_text())) or ""
    listed = {line.split()[0] for line in index.splitlines() if line.startswith("    ") and line.split()}
    modules = {path.stem for path in service.glob("*.py") if path.stem != "__init__"}
    assert modules <= listed, f"not in backend/service/__init__.py's index: {sorted(modules - listed)}"
