# Retraining the shipped networks (target `retrain`). The main job never trains: it uses the
# weights under priors/weights/, pinned in config/checkpoints.yaml. A retrained file lands in
# results/retrain/; compare it, then copy it over the shipped one and update its sha256.
import yaml

from ipbench.store.catalog import prior_files
from ipbench.training.commands import check_train_args, train_cli_tokens

CHECKPOINTS = yaml.safe_load(open(f"{workflow.basedir}/config/checkpoints.yaml"))
TRAINABLE = [k for k, v in CHECKPOINTS.items() if "train" in v]
for _name in TRAINABLE:        # they become arguments of the retrain commands: checked before any job
    check_train_args(CHECKPOINTS[_name]["train"]["args"], f"config/checkpoints.yaml, {_name}: train.args")


rule retrain:
    input:
        expand("results/retrain/{net}.safetensors", net=TRAINABLE),


rule train_network:
    input:
        lambda wc: [CHECKPOINTS[wc.net]["train"]["args"]["init"]] if "init" in CHECKPOINTS[wc.net]["train"]["args"] else [],
    output:
        "results/retrain/{net}.safetensors",
    log:
        "logs/retrain/{net}.log",
    wildcard_constraints:
        net="|".join(TRAINABLE),
    params:
        module=lambda wc: CHECKPOINTS[wc.net]["train"]["module"],
        args=lambda wc: train_cli_tokens(CHECKPOINTS[wc.net]["train"]["args"]),
    resources:
        **cluster("train"),
    shell:
        "{RUN} {params.module:q} --out {output:q} {params.args:q} 2> {log:q}"
