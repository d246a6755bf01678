"""Loading, validating and resolving the configuration; building the spec of each job.

A profile file may say ``extends: embedded.yaml`` and override keys of that file (dicts are
merged recursively, other values replaced). ``check`` validates against ``config/schema.yaml``
(filling defaults) and then checks the names that the schema cannot: operators, solvers, the
tasks and solvers each table lists, so that a typo fails at once with the valid choices.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

import jsonschema
import yaml

from ipbench.store.catalog import CONFIG_DIR, ROOT, checkpoint, deep_merge, trained_by  # noqa: F401 (re-exported)
from ipbench.store.catalog import entries as catalogue
from ipbench.suite.registry import SOLVERS, prior_keys, prior_kind, solve_keywords, solver_family


def read_yaml(path: Path) -> dict:
    """A config file as a mapping; a missing file or a YAML error names the file and the line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no config file at {path}")
    try:
        out = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(out, dict):
        raise ValueError(f"{path} does not hold a mapping of config keys")
    return out


def resolve(cfg: dict, config_dir: Path = CONFIG_DIR) -> dict:
    """Apply ``extends`` chains."""
    cfg = dict(cfg)
    parent = cfg.pop("extends", None)
    if parent is None:
        return cfg
    path = config_dir / parent
    if not path.exists() and (CONFIG_DIR / parent).exists():   # a file of one's own extending a shipped profile
        path, config_dir = CONFIG_DIR / parent, CONFIG_DIR
    if not path.exists():
        raise FileNotFoundError(f"config extends {parent!r}, but {path} does not exist")
    return deep_merge(resolve(read_yaml(path), config_dir), cfg)


def _fill_defaults(validator_cls):
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


def _unknown(what: str, key: str, where: str, valid) -> str:
    valid = sorted(map(str, valid))
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {key!r} at {where}{hint}; valid: {', '.join(valid) or 'none'}"


def _explain(e: jsonschema.ValidationError) -> list[str]:
    where = "/".join(map(str, e.absolute_path)) or "the top level"
    if e.validator == "additionalProperties" and e.validator_value is False:
        valid = e.schema.get("properties", {})
        return [_unknown("key", k, where, valid) for k in e.instance if k not in valid]
    if e.validator == "enum":
        return [_unknown("value", e.instance, where, e.validator_value)]
    return [f"invalid config at {where}: {e.message}"]


def check(cfg: dict, schema_path: Path = CONFIG_DIR / "schema.yaml") -> dict:
    """Validate (filling defaults) and cross-check names and keywords; return the config. Every problem found
    is reported at once, each naming the key, where it is and the valid choices."""
    schema = yaml.safe_load(schema_path.read_text())
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    problems = [p for e in errors for p in _explain(e)]
    if not problems:
        problems = _cross_check(cfg)
    if problems:
        raise ValueError("invalid config:\n  " + "\n  ".join(problems))
    return cfg


def _cross_check(cfg: dict) -> list[str]:
    """What the schema cannot check: names that refer to other entries, and the solvers' keywords."""
    out = []
    for name, s in cfg["solvers"].items():
        module = s.get("module", name)
        if module not in SOLVERS:
            out.append(_unknown("solver", module, f"solvers/{name}" + ("/module" if "module" in s else ""), SOLVERS))
            continue
        keywords = solve_keywords(module)
        out += [_unknown(f"keyword of {module}'s solve", k, f"solvers/{name}/hyper", keywords)
                for k in s["hyper"] if k not in keywords]
        for task, over in s["per_task"].items():
            if task not in cfg["tasks"]:
                out.append(_unknown("task", task, f"solvers/{name}/per_task", cfg["tasks"]))
            out += [_unknown(f"keyword of {module}'s solve", k, f"solvers/{name}/per_task/{task}", keywords)
                    for k in over if k not in keywords]
        out += [_unknown("task", t, f"solvers/{name}/tasks", cfg["tasks"]) for t in s.get("tasks", [])
                if t not in cfg["tasks"]]
    for tname, table in cfg["tables"].items():
        out += [_unknown("task", t, f"tables/{tname}/tasks", cfg["tasks"]) for t in table["tasks"] if t not in cfg["tasks"]]
        out += [_unknown("solver", x, f"tables/{tname}/solvers", cfg["solvers"]) for x in table["solvers"]
                if x not in cfg["solvers"]]
    for tname, task in cfg["tasks"].items():
        factor = task["operator"].get("factor") if task["operator"]["name"] == "downsampling" else None
        if factor and task["image_size"] % factor:
            out.append(f"tasks/{tname}: the down-sampling factor {factor} does not divide image_size "
                       f"{task['image_size']}")
        if task.get("family", "pixel") == "pixel":
            priors = cfg.get("priors", {})
            names = [priors.get("pixel"), priors.get("bridge", {}).get(tname)]
            out += [e for n in names if n for e in [prior_size_error(n, task["image_size"], tname)] if e]
    for task, solvers in cfg.get("speed", {}).get("runs", {}).items():
        if task not in cfg["tasks"]:
            out.append(_unknown("task", task, "speed/runs", cfg["tasks"]))
            continue
        out += [_unknown("solver", x, f"speed/runs/{task}", cfg["solvers"]) for x in solvers if x not in cfg["solvers"]]
        out += [f"speed/runs/{task}: solver {x!r} does not run on task {task!r}" for x in solvers
                if x in cfg["solvers"] and not applies(cfg, task, x)]
    for bname, bench in cfg.get("benches", {}).items():
        if bench["table"] not in cfg["tables"]:
            out.append(_unknown("table", bench["table"], f"benches/{bname}/table", cfg["tables"]))
    known = catalogue() if cfg.get("w2_grids") else {}
    for gname, grid in cfg.get("w2_grids", {}).items():
        if grid["task"] not in cfg["tasks"]:
            out.append(_unknown("task", grid["task"], f"w2_grids/{gname}/task", cfg["tasks"]))
        prior = grid.get("prior", cfg.get("priors", {}).get("pixel"))
        for where, name in [("prior", grid.get("prior")), *((f"adapters/{k}", v) for k, v in grid["adapters"].items())]:
            if name and name not in known:
                out.append(_unknown("checkpoint", name, f"w2_grids/{gname}/{where}", known))
            elif name and where != "prior" and prior not in known[name].get("needs", [prior]):
                out.append(f"w2_grids/{gname}/{where}: the adapter {name!r} was distilled from "
                           f"{', '.join(known[name]['needs'])}, not from the grid's prior {prior!r} (set w2_grids/{gname}/prior)")
    return out


def profiles(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem not in ("schema", "checkpoints"))


def select(cfg: dict, config_dir: Path = CONFIG_DIR) -> dict:
    """The full config of a Snakemake run: ``--configfile X`` as given (it may extend a profile), or
    ``--config profile=NAME [key=value ...]`` standing for config/NAME.yaml with those keys overridden (no
    profile: ``embedded``); then resolved and checked."""
    if "tasks" not in cfg and "extends" not in cfg:      # --config [profile=NAME] [key=value ...]: onto a profile
        cfg = {"profile": "embedded", **cfg}
        name = cfg["profile"]
        if name not in profiles(config_dir):
            raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(profiles(config_dir))}")
        cfg = deep_merge(read_yaml(config_dir / f"{name}.yaml"), cfg)
    return check(resolve(cfg, config_dir))


def load(path: str | Path) -> dict:
    path = Path(path)
    return check(resolve(read_yaml(path), path.parent))


def require(cfg: dict, kind: str, name: str) -> dict:
    """The config entry of a task or solver, or an error listing the valid names."""
    entries = cfg[kind]
    if name not in entries:
        raise ValueError(f"unknown {kind[:-1]} {name!r}; valid {kind}: {', '.join(sorted(entries))}")
    return entries[name]


# ---- job specs: what each stage needs, and what the run record stores as its config ----

COMPUTE_KEYS = ("family", "image_size", "frames", "sigma_y", "operator")  # what changes numbers (not titles)


def task_images(cfg: dict, task: str) -> int:
    """Test images (clips) of a task: its own ``n_images``, else the profile's."""
    return require(cfg, "tasks", task).get("n_images", cfg["n_images"])


def degrade_spec(cfg: dict, task: str) -> dict:
    t = require(cfg, "tasks", task)
    out = {"profile": cfg["profile"], "task": task, "task_spec": {k: t[k] for k in COMPUTE_KEYS if k in t},
           "n_images": task_images(cfg, task), "data": cfg["data"]}
    if cfg["data"]["kind"] == "paper_datasets":
        out["dataset"] = dataset_recipe(cfg, task)
    if t.get("family") == "video":     # the degrade stage tracks the true clips when the tracker needs no weights
        out["fvmd_tracker"] = "pips2" if cfg["features"].get("fvmd_checkpoint") else "lk"
    return out


def dataset_recipe(cfg: dict, task: str) -> dict:
    t = require(cfg, "tasks", task)
    if "dataset" not in t:
        raise ValueError(f"task {task!r} of profile {cfg['profile']!r} names no dataset")
    return {"key": t["dataset"], **require(cfg, "datasets", t["dataset"])}


def applies(cfg: dict, task: str, solver: str) -> bool:
    """Whether a solver runs on a task: a diffusion solver only on the tasks of its prior's family, a bridge
    solver only where a bridge is trained, a row with ``tasks`` only on those (prior-free baselines run
    everywhere)."""
    only = require(cfg, "solvers", solver).get("tasks")
    if only is not None and task not in only:  # a row limited to some tasks (e.g. where an adapter is trained)
        return False
    kind = prior_kind(module_name(cfg, solver))
    if kind == "bridge":                      # a bridge is trained per task: only the tasks that have one
        return task in cfg.get("priors", {}).get("bridge", {})
    family = solver_family(module_name(cfg, solver))
    return not family or family == require(cfg, "tasks", task).get("family", "pixel")


def require_pair(cfg: dict, task: str, solver: str) -> None:
    """An error saying why, when the config does not run ``solver`` on ``task`` (a target asked for it)."""
    require(cfg, "tasks", task)
    s = require(cfg, "solvers", solver)
    if applies(cfg, task, solver):
        return
    kind = prior_kind(module_name(cfg, solver))
    family = require(cfg, "tasks", task).get("family", "pixel")
    if s.get("tasks") is not None and task not in s["tasks"]:
        why = f"the row runs only on {', '.join(s['tasks'])} (its `tasks`)"
    elif kind == "bridge":
        why = "no bridge network is trained for that task (config key priors.bridge)"
    else:
        why = (f"its prior is a {kind} prior ({solver_family(module_name(cfg, solver))} family) and the task is of the "
               f"{family} family")
    runs = [x for x in cfg["solvers"] if applies(cfg, task, x)]
    raise ValueError(f"solver {solver!r} does not run on task {task!r}: {why}; solvers for {task!r}: {', '.join(runs)}")


def table_pairs(cfg: dict, name: str) -> list[tuple[str, str]]:
    """The (task, solver) runs behind a table."""
    table = require(cfg, "tables", name)
    return [(t, s) for t in table["tasks"] for s in table["solvers"] if applies(cfg, t, s)]


def module_name(cfg: dict, solver: str) -> str:
    """The registry name behind a configured solver row."""
    return require(cfg, "solvers", solver).get("module", solver)


def solve_spec(cfg: dict, task: str, solver: str) -> dict:
    s = require(cfg, "solvers", solver)
    hyper = {**s.get("hyper", {}), **s.get("per_task", {}).get(task, {})}
    out = {**degrade_spec(cfg, task), "solver": solver, "module": module_name(cfg, solver), "hyper": hyper,
           "device": cfg["device"], "precision": cfg["precision"],
           "bare_timing_every": cfg["bare_timing_every"], "bare_timing": cfg["bare_timing"],
           "solver_images": min(s.get("n_images", task_images(cfg, task)), task_images(cfg, task))}
    n, sharding = out["solver_images"], cfg.get("sharding", {})
    out["shard_size"] = min(s.get("shard_size") or sharding.get("shard_size") or n, n)
    out["batch_size"] = min(s.get("batch_size") or sharding.get("batch_size") or out["shard_size"], out["shard_size"])
    kind = prior_kind(out["module"])
    if kind:
        for key in prior_keys(kind):
            if key not in cfg.get("priors", {}):
                raise ValueError(f"solver {solver!r} needs a {key} prior, but profile {cfg['profile']!r} names none "
                                 f"(config key priors.{key})")
        out["priors"] = {key: prior_name(cfg, key, task) for key in prior_keys(kind)}
        if kind in ("latent", "consistency") and "image_text" in cfg["priors"]:
            out["priors"]["image_text"] = cfg["priors"]["image_text"]
    return out


def _ranges(spec: dict) -> list[tuple[int, int]]:
    n, size = spec["solver_images"], spec["shard_size"]
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def shards(cfg: dict, task: str, solver: str) -> list[tuple[int, int]]:
    """The image ranges [start, stop) of a solve's shards, each one Snakemake job."""
    return _ranges(solve_spec(cfg, task, solver))


def shard_spec(cfg: dict, task: str, solver: str, shard: int) -> dict:
    """The spec of one shard's solve job: the solve's spec and the image range of shard ``shard``."""
    spec = solve_spec(cfg, task, solver)
    ranges = _ranges(spec)
    if not 0 <= shard < len(ranges):
        raise ValueError(f"{solver} on {task} has {len(ranges)} shard(s) (0..{len(ranges) - 1}), not shard {shard}")
    return {**spec, "shard": list(ranges[shard])}


def job_resources(cfg: dict, stage: str, solver: str | None = None, images: int = 0) -> dict:
    """What one job asks of a cluster (config ``cluster``), as Snakemake resources: ``slurm_partition``,
    ``gpu`` (0: none), ``runtime`` (minutes), ``mem_mb`` and ``cpus_per_task``. ``stage`` is a key of
    ``cluster`` (solve: by the solver's prior kind, or its row's ``resources``)."""
    import math
    cluster = cfg["cluster"]
    if stage == "solve":
        row = require(cfg, "solvers", solver)
        kind = prior_kind(module_name(cfg, solver)) or "none"
        job = row.get("resources") or cluster["solve"].get(kind) or cluster["solve"]["default"]
    else:
        job = cluster[stage]
    return {"slurm_partition": cluster["gpu_partition" if job["gpu"] else "cpu_partition"], "gpu": job["gpu"],
            "runtime": max(1, math.ceil(job["minutes"] + job["minutes_per_image"] * images)),
            "mem_mb": job["mem_mb"], "cpus_per_task": job["cpus"]}


def prior_size_error(name: str, image_size: int, task: str) -> str | None:
    """A pixel network generates images of one size (its UNet's ``sample_size``, in the shipped file's
    metadata): the error for a task of another ``image_size``. Fetched networks (no shipped file) are not
    checked here."""
    import json
    from ipbench.store.files import safetensors_metadata
    try:
        entry = checkpoint(name)
    except ValueError:
        return None
    path = ROOT / entry["path"] if "path" in entry else None
    if path is None or not path.exists():
        return None
    size = json.loads(safetensors_metadata(path).get("config", "{}")).get("sample_size")
    if size is None or image_size == size:
        return None
    return (f"task {task!r} has image_size {image_size}, but its prior {name!r} generates {size} x {size} images: "
            f"set tasks/{task}/image_size to {size}, or use a prior trained at {image_size}")


def prior_name(cfg: dict, kind: str, task: str) -> str:
    """The checkpoint behind a prior kind; bridges (I2SB's networks) are named per task."""
    name = cfg["priors"][kind]
    if kind == "bridge":
        if task not in name:
            raise ValueError(f"no bridge network for task {task!r} (config key priors.bridge); bridges exist for: "
                             f"{', '.join(sorted(name)) or 'none'}")
        name = name[task]
    return name


def prior_files(cfg: dict, solver: str, task: str | None = None) -> list[str]:
    """Shipped weight files behind a solver's prior (and, given the task, its adapter: UD2M's distillation):
    inputs of its solve jobs (retraining reruns them)."""
    from ipbench.store.catalog import prior_files as files
    kind = prior_kind(module_name(cfg, solver))
    if not kind:
        return []
    if kind == "bridge":
        return files(prior_name(cfg, kind, task)) if task is not None else []
    names = [cfg["priors"][key] for key in prior_keys(kind)]
    names += [cfg["priors"]["image_text"]] if "image_text" in cfg["priors"] and kind in ("latent", "consistency") else []
    if task is not None:
        s = require(cfg, "solvers", solver)
        adapter = {**s.get("hyper", {}), **s.get("per_task", {}).get(task, {})}.get("adapter")
        names += [adapter] if adapter else []
    return [f for n in names for f in files(n)]


def fetched_checkpoints(cfg: dict, solver: str | None = None, task: str | None = None) -> list[str]:
    """The downloaded (not shipped) checkpoints a solve needs (its prior, image-text model, adapter, RAM, VIDUE), or
    with no solver the scoring's feature networks: what the fetch stage must place before the job runs."""
    from ipbench.store.catalog import entries, fetched_names
    if solver is None:
        names = [cfg["features"].get(k) for k in ("checkpoint", "lpips_checkpoint", "fvmd_checkpoint")]
    else:
        kind = prior_kind(module_name(cfg, solver))
        names = [prior_name(cfg, key, task) for key in prior_keys(kind) if key in cfg.get("priors", {})]
        if kind in ("latent", "consistency"):
            names.append(cfg["priors"].get("image_text"))
        s = require(cfg, "solvers", solver)
        hyper = {**s.get("hyper", {}), **(s.get("per_task", {}).get(task, {}) if task else {})}
        names += [hyper.get("adapter"), hyper.get("ram"), hyper.get("interpolator")]
    catalogue = entries()
    return list(dict.fromkeys(f for n in names if n in catalogue for f in fetched_names(n)))


def score_spec(cfg: dict, task: str, solver: str) -> dict:
    features = dict(cfg["features"])
    ck = checkpoint(features["checkpoint"]) if "checkpoint" in features else {}
    if "path" in ck:                 # shipped weights (fetched ones are found by the score stage)
        features.update(path=str(ROOT / ck["path"]), sha256=ck["sha256"])
        if "feature_rms" in ck:
            features["feature_rms"] = ck["feature_rms"]
    # scoring runs on the solve's device only where the cluster gives its jobs a GPU (config cluster/score)
    score_device = cfg["device"] if cfg["cluster"]["score"]["gpu"] else "cpu"
    return {**solve_spec(cfg, task, solver), "features": features, "label": cfg["solvers"][solver]["label"],
            "score_device": score_device}


def bench_spec(cfg: dict, name: str) -> dict:
    bench = require(cfg, "benches", name)
    require(cfg, "tables", bench["table"])
    return {"name": name, "title": bench["title"], "table": bench["table"], "paper_table": bench.get("paper_table")}


def speed_pairs(cfg: dict) -> list[tuple[str, str, str]]:
    """The (lever, task, solver) measurements behind results/bench_speed.md."""
    speed = cfg.get("speed", {})
    return [(lever, t, s) for lever in speed.get("levers", {}) for t, solvers in speed.get("runs", {}).items()
            for s in solvers]


def speed_spec(cfg: dict, lever: str, task: str, solver: str) -> dict:
    """One solver's solve spec on the first ``speed.n_images`` measurements, with the lever to measure."""
    speed = cfg.get("speed") or {}
    if lever not in speed.get("levers", {}):
        raise ValueError(f"unknown speed lever {lever!r}; valid: {', '.join(speed.get('levers', {})) or 'none'}")
    out = solve_spec(cfg, task, solver)
    n = min(speed["n_images"], task_images(cfg, task))
    return {**out, "solver_images": n, "shard_size": n, "batch_size": min(out["batch_size"], n), "lever": lever,
            "lever_overrides": speed["levers"][lever]}


def speed_networks_spec(cfg: dict) -> dict:
    """The networks timed alone for results/bench_speed.md: the profile's pixel and latent priors."""
    from ipbench.store.catalog import prior_files as files
    priors = {k: cfg["priors"][k] for k in ("pixel", "latent") if k in cfg.get("priors", {})}
    return {"priors": priors, "batch": cfg.get("speed", {}).get("batch", 20),
            "files": sorted({f for name in priors.values() for f in files(name)})}


def table_spec(cfg: dict, name: str) -> dict:
    table = require(cfg, "tables", name)
    return {
        "name": name, "title": table["title"], "profile": cfg["profile"],
        "feature_note": cfg.get("feature_note", ""), "notes": table.get("notes", ""),
        "tasks": [{"key": t, **require(cfg, "tasks", t),
                   "solvers": [s for s in table["solvers"] if applies(cfg, t, s)]} for t in table["tasks"]],
        "solvers": [{"key": s, "label": cfg["solvers"][s]["label"],
                     "paper_name": cfg["solvers"][s].get("paper_name")} for s in table["solvers"]],
        "layout": table["layout"], "below_rule": table.get("below_rule", []), "elsewhere": table.get("elsewhere", {}),
        "metrics": table.get("metrics", ["psnr", "ssim", "lpips", "fid", "kid"]),
        "paper_tables": table.get("paper_tables", {}),
    }


def figure_solvers(cfg: dict, task: str) -> list[str]:
    """Solvers shown in a task's restoration grid: every solver of the tables that list the task."""
    out = []
    for table in cfg["tables"].values():
        if task in table["tasks"]:
            out += [s for s in table["solvers"] if s not in out and applies(cfg, task, s)]
    return out


def figure_tasks(cfg: dict) -> list[str]:
    return list(dict.fromkeys(t for table in cfg["tables"].values() for t in table["tasks"]))


def restoration_spec(cfg: dict, task: str) -> dict:
    t = require(cfg, "tasks", task)
    return {"task": task, "title": t["title"], "n_images": task_images(cfg, task), "operator": t["operator"],
            "sigma_y": t["sigma_y"], "labels": [cfg["solvers"][s]["label"] for s in figure_solvers(cfg, task)]}


def video_figure_tasks(cfg: dict) -> list[str]:
    """The tasks of the tables whose items are clips (a GIF per solver beside the frame strips)."""
    return [t for t in figure_tasks(cfg) if cfg["tasks"][t].get("family") == "video"]


def calibration_tasks(cfg: dict) -> list[str]:
    """Tasks of the prompt-calibration figure: the latent tasks on which LATINO-PRO is configured."""
    if "latino_pro" not in cfg["solvers"] or "latino" not in cfg["solvers"]:
        return []
    return [t for t in figure_tasks(cfg) if applies(cfg, t, "latino_pro") and "latino_pro" in figure_solvers(cfg, t)]


def calibration_spec(cfg: dict, task: str, n_images: int = 4, n_samples: int = 3) -> dict:
    return {"task": task, "title": require(cfg, "tasks", task)["title"], "n_images": n_images,
            "n_samples": n_samples, "latino": solve_spec(cfg, task, "latino"),
            "latino_pro": solve_spec(cfg, task, "latino_pro")}


CALIBRATION_ROWS = ("latino", "latino_pro_paper", "latino_pro", "latino_true_caption")


def calibration_report_pairs(cfg: dict) -> list[tuple[str, str]]:
    """The (task, solver) runs behind ``results/calibration_latino_pro.md`` (rows the profile configures; the
    report reads the true digit of each image, so only profiles of labelled digits have one)."""
    if cfg["data"]["kind"] != "embedded_digits":
        return []
    return [(t, s) for t in calibration_tasks(cfg) for s in CALIBRATION_ROWS
            if s in cfg["solvers"] and applies(cfg, t, s)]


def calibration_report_spec(cfg: dict) -> dict:
    pairs = calibration_report_pairs(cfg)
    if not pairs:
        raise ValueError(f"profile {cfg['profile']!r} runs no LATINO-PRO on a latent task: no calibration report")
    pro = solve_spec(cfg, pairs[0][0], "latino_pro")
    return {"profile": cfg["profile"], "pairs": [list(p) for p in pairs], "priors": pro["priors"],
            "frozen_tokens": pro["hyper"].get("frozen_tokens", 4), "device": cfg["device"],
            "titles": {t: require(cfg, "tasks", t)["title"] for t, _ in pairs},
            "rows": {s: {"label": cfg["solvers"][s]["label"], "prompts": cfg["solvers"][s].get("hyper", {}).get("prompts")}
                     for _, s in pairs}}


def w2_grid(cfg: dict, name: str) -> dict:
    grid = require(cfg, "w2_grids", name)
    require(cfg, "tasks", grid["task"])
    return grid


def w2_trained_K(cfg: dict, name: str) -> list[int]:
    """The K of a grid that have a distilled adapter (the others are reported as not run)."""
    grid = w2_grid(cfg, name)
    return [k for k in grid["K"] if grid["adapters"].get(k) or grid["adapters"].get(str(k))]


def w2_degrade_spec(cfg: dict, name: str) -> dict:
    grid = w2_grid(cfg, name)
    return {**degrade_spec(cfg, grid["task"]), "n_images": grid.get("n_images", cfg["n_images"])}


def w2_cell_spec(cfg: dict, name: str, K: int) -> dict:
    grid = w2_grid(cfg, name)
    adapters = {int(k): v for k, v in grid["adapters"].items()}
    return {**w2_degrade_spec(cfg, name), "K": int(K), "N": grid["N"], "adapter": adapters.get(int(K)),
            "priors": {"pixel": grid.get("prior", cfg["priors"]["pixel"])}}


def w2_table_spec(cfg: dict, name: str) -> dict:
    grid = w2_grid(cfg, name)
    return {"name": name, "title": grid["title"], "task": grid["task"], "K": grid["K"], "N": grid["N"],
            "n_images": grid.get("n_images", cfg["n_images"]), "paper_table": grid["paper_table"], "notes": grid.get("notes", "")}


def w2_files(cfg: dict, name: str, K) -> list[str]:
    """Weights behind one K of a grid: the pixel prior, its adapter, the W2 embedding."""
    from ipbench.store.catalog import prior_files as files
    spec = w2_cell_spec(cfg, name, K)
    names = [spec["priors"]["pixel"], "w2_embedding"] + ([spec["adapter"]] if spec["adapter"] else [])
    return [f for n in names for f in files(n)]


def w2_figure_spec(cfg: dict, name: str) -> dict | None:
    """The posterior figure of a grid (its ``figure`` key), or None without one or without that K's adapter."""
    grid = w2_grid(cfg, name)
    fig = grid.get("figure")
    if not fig or fig["K"] not in w2_trained_K(cfg, name):
        return None
    return {**w2_cell_spec(cfg, name, fig["K"]), "figure": fig}
