"""The registry of solvers: name -> module with ``solve(y, op, prior, *, generator, **hyper)``."""
from __future__ import annotations

import importlib

SOLVERS = {
    "pinv": "baselines.pinv",
    "admm_tv": "baselines.admm_tv",
    "ddrm": "baselines.ddrm",
    "diffpir": "baselines.diffpir",
    "dps": "baselines.dps",
    "i2sb": "baselines.i2sb",
    "cddb": "baselines.cddb",
    "ldps": "baselines.ldps",
    "psld": "baselines.psld",
    "p2l": "baselines.p2l",
    "treg": "baselines.treg",
    "latino": "methods.latino",
    "latino_pro": "methods.latino_pro",
    "ud2m": "methods.ud2m",
}


def solver_module(name: str):
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; valid solvers: {', '.join(sorted(SOLVERS))}")
    return importlib.import_module(SOLVERS[name])
