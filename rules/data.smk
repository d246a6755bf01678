# Test data and measurements: y = A(x) + sigma_y n for the test images of a task, seeded per image.
from ipbench.datasets.fetch import local_name

LOCK = "resources/checksums.lock"   # in the working directory, beside resources/checkpoints and resources/datasets (untracked)


def dataset_file_of(task):
    """The verified dataset file a task reads (paper profile); none for the embedded digits."""
    if config["data"]["kind"] != "paper_datasets":
        return []
    recipe = suite_config.dataset_recipe(config, task)
    return f"resources/datasets/{recipe['key']}/{local_name(recipe['source'])}"


def dataset_file(wildcards):
    return dataset_file_of(wildcards.task)


rule fetch_dataset:
    output:
        "resources/datasets/{key}/{filename}",
    log:
        "logs/fetch/{key}/{filename}.log",
    params:
        resource=lambda wc: json.dumps({**config["datasets"][wc.key]["source"],
                                        "sha256": config["datasets"][wc.key].get("sha256")}),
    shell:
        "{FETCH} --threads {threads} fetch --key {wildcards.key:q} --resource {params.resource:q} "
        "--dest resources/datasets --lock {LOCK:q} 2> {log:q}"


rule degrade:
    input:
        dataset_file,
    output:
        "results/degraded/{profile}/{task}.safetensors",
    log:
        "logs/degrade/{profile}/{task}.log",
    params:
        spec=lambda wc: spec(suite_config.degrade_spec, wc.task),
        dataset=lambda wc, input: ["--dataset-file", input[0], "--lock", LOCK] if input else [],
    resources:
        **cluster("degrade"),
    shell:
        "{SUITE} --threads {threads} degrade --spec {params.spec:q} --out {output:q} {params.dataset:q} 2> {log:q}"


rule fetch_checkpoint:
    output:
        "resources/checkpoints/{name}/fetched.json",
    log:
        "logs/fetch/checkpoints/{name}.log",
    shell:
        "{FETCH} fetch-checkpoint --name {wildcards.name:q} --out {output:q} --lock {LOCK:q} 2> {log:q}"
