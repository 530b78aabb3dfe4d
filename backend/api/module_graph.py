"""The dashboard's ES modules a page's script imports, directly or through others, read from the files.

A page's head preloads every one of them (``<link rel="modulepreload">``), so that the browser asks
for them all while the HTML is parsed instead of one level of imports after another. The list comes
from the scripts' own ``import ... from "./x.js"`` lines: adding an import needs no other change.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

#: A static import of a relative module: ``import {a} from "./a.js"``, ``import "./b.js"``,
#: ``export {c} from "../c.js"`` (the names may span lines).
STATIC_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b(?:[^;"']*?\bfrom)?\s*["'](\.{1,2}/[^"']+\.js)["']""", re.MULTILINE
)


def imported_modules(root: Path, script: str) -> tuple[str, ...]:
    """Every module ``script`` imports, directly or indirectly, in the order first met (depth first).

    Args:
        root: the folder the modules' paths are relative to (``frontend/js``).
        script: the page's module, relative to ``root`` (``pages/list.js``).

    Returns:
        Their paths relative to ``root``, without ``script`` itself.

    Raises:
        FileNotFoundError: a module imports one that does not exist.
    """
    seen: dict[str, None] = {}

    def visit(module: str) -> None:
        text = (root / module).read_text(encoding="utf-8")
        for relative in STATIC_IMPORT.findall(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(module), relative))
            if target not in seen and target != script:
                seen[target] = None
                visit(target)

    visit(script)
    return tuple(seen)
