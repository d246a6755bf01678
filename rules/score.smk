# The shards of a solve gathered (samples.safetensors), per-image and set-level metrics; the run record of
# (profile, task, solver).


rule score:
    input:
        degraded="results/degraded/{profile}/{task}.safetensors",
        samples=lambda wc: shard_files(wc, "safetensors"),
        meta=lambda wc: shard_files(wc, "json"),
        features=feature_weights,
    output:
        record="results/score/{profile}/{task}/{solver}/record.json",
        samples="results/solve/{profile}/{task}/{solver}/samples.safetensors",
    log:
        "logs/score/{profile}/{task}/{solver}.log",
    params:
        spec=lambda wc: spec(suite_config.score_spec, wc.task, wc.solver),
    threads: 1
    resources:
        **cluster("score"),
    shell:
        "{SUITE} --threads {threads} score --spec {params.spec:q} --degraded {input.degraded:q} "
        "--samples {input.samples:q} --meta {input.meta:q} --out {output.record:q} --gathered {output.samples:q} "
        "2> {log:q}"


rule unknown_record:
    input:
        unknown(tasks="task_name", solvers="solver_name"),
    output:
        "results/score/{profile_name}/{task_name}/{solver_name}/record.json",
    shell:
        "echo 'error: no rule makes {output:q} with this profile' >&2; exit 1"


ruleorder: score > unknown_record
