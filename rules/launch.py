"""Run a module of the suite from the checkout this file is in, whichever copy of ``ipbench`` is installed.

    python -P rules/launch.py MODULE [ARGS...]     e.g.  rules/launch.py ipbench.suite solve --spec ...

The Snakemake jobs go through it, so a job runs the code of the Snakefile's checkout (a second worktree, an
edited copy) and not the one ``pip install -e`` pointed at; ``-P`` keeps the checkout's own folders off
``sys.path``, so its ``datasets/`` cannot shadow Hugging Face's. The Snakefile binds the package the same way
(``bind``) before reading the config.
"""
from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def bind(root: Path = CHECKOUT):
    """Import ``ipbench`` from ``root``; an error if another copy is already imported in this process."""
    loaded = sys.modules.get("ipbench")
    if loaded is not None:
        if Path(loaded.__file__).resolve().parent != root:
            raise ImportError(f"ipbench is already imported from {Path(loaded.__file__).parent}, not {root}")
        return loaded
    spec = importlib.util.spec_from_file_location("ipbench", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ipbench"] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("ipbench"):
        sys.exit("usage: python -P rules/launch.py ipbench.MODULE [ARGS...]")
    bind()
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
