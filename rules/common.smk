# Config resolution and validation (config/schema.yaml), names, and the job specs of each stage.
import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path

_launch = importlib.util.spec_from_file_location("ipbench_launch", f"{workflow.basedir}/rules/launch.py")
_launch_module = importlib.util.module_from_spec(_launch)
_launch.loader.exec_module(_launch_module)
_launch_module.bind()          # ipbench is this checkout's code, here and in every job (rules/launch.py)

from ipbench.suite import config as suite_config

_resolved = suite_config.select(dict(config))
config.clear()
config.update(_resolved)

from ipbench.store.files import safetensors_intact

# A damaged intermediate (a truncated or overwritten safetensors file under results/, e.g. from a full disk) is
# named and removed when the DAG is planned: the next job that needs it rebuilds it first (byte-identical), and
# what was already computed from it stays. Only the main process looks (cluster jobs re-read this file).
if workflow.is_main_process and Path("results").is_dir():
    for _path in sorted(Path("results").glob("**/*.safetensors")):
        if not safetensors_intact(_path):
            print(f"{_path} is damaged (not a whole safetensors file): removed; the next job that needs it "
                  "rebuilds it", file=sys.stderr)
            _path.unlink()

PROFILE = config["profile"]
TASKS = list(config["tasks"])
SOLVERS = list(config["solvers"])
TABLES = list(config["tables"])
BENCHES = list(config.get("benches", {}))
# a job's command: this checkout's module, with the checkout's folders kept off sys.path (-P)
RUN = " ".join(map(shlex.quote, [sys.executable, "-P", f"{workflow.basedir}/rules/launch.py"]))
FETCH = f"{RUN} ipbench.suite"
# compute jobs never download: the fetch stage placed every file (an absent one is an error naming it)
SUITE = f"IPBENCH_OFFLINE=1 HF_HUB_OFFLINE=1 {FETCH}"


wildcard_constraints:
    profile=PROFILE,
    task="|".join(TASKS),
    solver="|".join(SOLVERS),
    table="|".join(TABLES),
    bench="|".join(BENCHES) or "^$",
    shard=r"\d+",


def spec(builder, *names):
    """The JSON spec of one job; a rule param, so a change of the config reruns what it affects."""
    return json.dumps(builder(config, *names), sort_keys=True)


def shipped(files):
    """Shipped weight files (paths relative to the checkout) as inputs: a missing one stops the run while the
    DAG is built, named (no rule makes it, so Snakemake would otherwise fall back to a catch-all rule)."""
    paths = [str(suite_config.ROOT / f) for f in files]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"shipped weights missing: {', '.join(missing)}; restore them (git checkout -- FILE) "
                                "or retrain them (snakemake --cores all retrain) and install the result")
    return paths


def fetched(names):
    """The fetch stage's outputs for downloaded checkpoints: compute jobs wait for them and run offline."""
    return [f"resources/checkpoints/{name}/fetched.json" for name in names]


def feature_weights(wildcards=None):
    """The weights of the metric feature networks (inputs of scoring): shipped, or fetched first."""
    name = config["features"].get("checkpoint")
    if not name or "path" not in suite_config.checkpoint(name):
        return fetched(suite_config.fetched_checkpoints(config))
    return shipped([suite_config.checkpoint(name)["path"]])


def solve_weights(wildcards):
    """The weights a solve reads (shipped, or fetched first); a (task, solver) pair the config does not run is
    refused with the reason."""
    suite_config.require_pair(config, wildcards.task, wildcards.solver)
    return (shipped(suite_config.prior_files(config, wildcards.solver, wildcards.task))
            + fetched(suite_config.fetched_checkpoints(config, wildcards.solver, wildcards.task)))


def shard_files(wildcards, ext):
    """The shards' outputs of one solve (``ext``: safetensors or json), in image order."""
    task, solver = wildcards.task, wildcards.solver
    ranges = suite_config.shards(config, task, solver)
    return [f"results/solve/{PROFILE}/{task}/{solver}/shard_{k}.{ext}" for k in range(len(ranges))]


def cluster(stage):
    """A rule's resources from the config's ``cluster`` section (suite/config.py: job_resources), each a
    function of the job's wildcards: a solve's follow its solver and the images of its shard."""

    asked = {}

    def job(wc):                       # one request per job, shared by its five resources
        key = tuple(sorted(wc.items()))
        if key not in asked:
            asked[key] = request(wc)
        return asked[key]

    def request(wc):
        if stage == "solve":
            lo, hi = suite_config.shard_spec(config, wc.task, wc.solver, int(wc.shard))["shard"]
            return suite_config.job_resources(config, stage, solver=wc.solver, images=hi - lo)
        if stage == "score":
            images = suite_config.solve_spec(config, wc.task, wc.solver)["solver_images"]
            return suite_config.job_resources(config, stage, images=images)
        return suite_config.job_resources(config, stage)

    keys = ("slurm_partition", "gpu", "runtime", "mem_mb", "cpus_per_task")
    return {key: (lambda wc, key=key: job(wc)[key]) for key in keys}


def table_records(wildcards):
    """Run records behind a table (``wildcards.table``, or a table name)."""
    name = wildcards if isinstance(wildcards, str) else wildcards.table
    return [
        f"results/score/{PROFILE}/{task}/{solver}/record.json"
        for task, solver in suite_config.table_pairs(config, name)
    ]


class Wildcards(dict):
    """Named wildcards for calling an input function by hand."""
    __getattr__ = dict.__getitem__


def unknown(**names):
    """Input function of the catch-all rules: an unknown name fails while the DAG is built,
    with the valid names (a typo in a target never reaches a job)."""

    def fail(wildcards):
        if wildcards.get("profile_name", PROFILE) != PROFILE:
            raise ValueError(f"the target is for profile {wildcards.profile_name!r}, but this run's profile is "
                             f"{PROFILE!r} (choose one with --config profile=NAME; valid: "
                             f"{', '.join(suite_config.profiles())})")
        for kind, wildcard in names.items():
            suite_config.require(config, kind, wildcards[wildcard])
        if wildcards.get("task_name") and wildcards.get("solver_name"):   # known names: say why no rule applies
            pair = Wildcards(task=wildcards.task_name, solver=wildcards.solver_name)
            solve_weights(pair)
            feature_weights()
        return []          # every name is valid and the pair runs: the real rule makes it (ruleorder)

    return fail
