"""The registry of solvers: name -> module with ``solve(y, op, prior, *, generator, **hyper)`` and the prior
family it needs.

The prior kind is what the DAG plans with (which tasks a solver runs on, which weights its jobs read): 'pixel'
(eps(x_t, t) on [-1, 1] images), 'latent' (encode / decode / embed / eps(z_t, t, c)), 'consistency' (adds
x0(z_t, t, c)), 'bridge' (I2SB's eps(x_n, n), one network per task), 'video' (LVTINO's pair: a video consistency
model and an image consistency model per frame), 'video_latent' (VISION-XL's image latent DM, per frame) or None
(no learnt prior). A solver runs on the tasks of its prior's family, or of the ``family`` its entry names. Planning reads
it, and the keywords ``solve`` accepts, without importing a solver (so without torch): the keywords are read
from the module's source (``solve_keywords``).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import lru_cache
from typing import NamedTuple


class Solver(NamedTuple):
    module: str
    prior: str | None
    family: str | None = None


FAMILY_OF_PRIOR = {"pixel": "pixel", "latent": "latent", "consistency": "latent", "bridge": "pixel", "video": "video",
                   "video_latent": "video"}
# the profile's ``priors`` keys a prior kind loads (LVTINO's pair reads two: the video and the per-frame model)
PRIOR_KEYS = {"video": ("video", "video_frames")}


SOLVERS = {
    "pinv": Solver("ipbench.baselines.pinv", None),
    "admm_tv": Solver("ipbench.baselines.admm_tv", None),
    "vidue": Solver("ipbench.baselines.vidue", None, "video"),     # a network, but no prior: clips only
    "ddrm": Solver("ipbench.baselines.ddrm", "pixel"),
    "diffpir": Solver("ipbench.baselines.diffpir", "pixel"),
    "dps": Solver("ipbench.baselines.dps", "pixel"),
    "i2sb": Solver("ipbench.baselines.i2sb", "bridge"),
    "cddb": Solver("ipbench.baselines.cddb", "bridge"),
    "ldps": Solver("ipbench.baselines.ldps", "latent"),
    "psld": Solver("ipbench.baselines.psld", "latent"),
    "p2l": Solver("ipbench.baselines.p2l", "latent"),
    "treg": Solver("ipbench.baselines.treg", "latent"),
    "latino": Solver("ipbench.methods.latino", "consistency"),
    "latino_pro": Solver("ipbench.methods.latino_pro", "consistency"),
    "ud2m": Solver("ipbench.methods.ud2m", "pixel"),
    "lvtino": Solver("ipbench.methods.lvtino", "video"),
    "vision_xl": Solver("ipbench.baselines.vision_xl", "video_latent"),
}

# arguments every solve takes from the stage, never from the config
STAGE_ARGUMENTS = ("y", "op", "prior", "generator")


def _entry(name: str) -> Solver:
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; valid solvers: {', '.join(sorted(SOLVERS))}")
    return SOLVERS[name]


def solver_module(name: str):
    return importlib.import_module(_entry(name).module)


def prior_kind(name: str) -> str | None:
    """The prior kind a solver needs (None: no learnt prior)."""
    return _entry(name).prior


def solver_family(name: str) -> str | None:
    """The family of tasks a solver runs on (None: every task, a prior-free baseline)."""
    entry = _entry(name)
    return entry.family or FAMILY_OF_PRIOR.get(entry.prior)


def prior_keys(kind: str | None) -> tuple[str, ...]:
    """The profile's ``priors`` keys behind a prior kind."""
    return PRIOR_KEYS.get(kind, (kind,)) if kind else ()


@lru_cache(maxsize=None)
def solve_keywords(name: str) -> frozenset[str]:
    """The hyper-parameters ``solve`` of a registered solver accepts, read from its source: its named
    parameters, and where it forwards ``**kw`` to a function of the same module, that function's (followed
    to the end of the chain), less the arguments the stage supplies."""
    path = importlib.util.find_spec(_entry(name).module).origin
    with open(path) as f:
        functions = {n.name: n for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef)}
    return frozenset(_keywords(functions, "solve", name)) - set(STAGE_ARGUMENTS)


def _keywords(functions: dict, fname: str, solver: str) -> set[str]:
    fn = functions[fname]
    a = fn.args
    names = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
    if a.kwarg is None:
        return names
    forwarded = [c for c in ast.walk(fn) if isinstance(c, ast.Call)
                 and any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == a.kwarg.arg
                         for k in c.keywords)]
    if len(forwarded) != 1 or not isinstance(forwarded[0].func, ast.Name) or forwarded[0].func.id not in functions:
        raise TypeError(f"solver {solver!r}: {fname}(**{a.kwarg.arg}) does not forward to exactly one function of "
                        "its module, so its keywords cannot be checked; spell them out in the signature")
    call = forwarded[0]
    bound = {k.arg for k in call.keywords if k.arg is not None}
    return names | (_keywords(functions, call.func.id, solver) - bound)
