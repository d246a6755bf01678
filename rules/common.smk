# Config resolution and validation (config/schema.yaml), names, and the job specs of each stage.
import json
import sys

sys.path.insert(0, workflow.basedir)

from suite import config as suite_config

_resolved = suite_config.check(suite_config.resolve(dict(config)))
config.clear()
config.update(_resolved)

PROFILE = config["profile"]
TASKS = list(config["tasks"])
SOLVERS = list(config["solvers"])
TABLES = list(config["tables"])
PY = sys.executable


wildcard_constraints:
    profile=PROFILE,
    task="|".join(TASKS),
    solver="|".join(SOLVERS),
    table="|".join(TABLES),


def spec(builder, *names):
    """The JSON spec of one job; a rule param, so a change of the config reruns what it affects."""
    return json.dumps(builder(config, *names), sort_keys=True)


def feature_weights(wildcards=None):
    """The weights file of the metric feature network (an input of scoring), if it has one."""
    name = config["features"].get("checkpoint")
    return [suite_config.checkpoint(name)["path"]] if name else []


def table_records(wildcards):
    table = config["tables"][wildcards.table]
    return expand(
        "results/score/{profile}/{task}/{solver}/record.json",
        profile=PROFILE,
        task=table["tasks"],
        solver=table["solvers"],
    )
