"""Run a notebook's tagged code cells in this interpreter, to test what they define.

A notebook is the only place its code lives, so a user who downloads it gets all
of it. Tests that need that code with inputs the notebook doesn't show (replies
the canned answers don't cover, other corpora) run the cells tagged
`definitions`, in order, and use the names they define.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import nbformat


def notebook_definitions(path: Path, tag: str = "definitions") -> ModuleType:
    """The code cells of `path` tagged `tag`, run as a module, as if imported."""
    notebook = nbformat.read(path, as_version=4)
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and tag in cell.metadata.get("tags", [])
    ]
    if not cells:
        raise ValueError(f"{path.name} has no code cell tagged {tag!r}")
    module = ModuleType(f"notebook_{path.stem}")
    sys.modules[module.__name__] = module
    for cell in cells:
        source = compile(
            cell.source, f"{path.name}[{cell.id}]", "exec", dont_inherit=True
        )
        exec(source, module.__dict__)
    return module
