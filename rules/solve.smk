# One solver on one shard of a task's images (config `sharding`: images per job, images per mini-batch).


rule solve:
    input:
        degraded="results/degraded/{profile}/{task}.safetensors",
        prior=solve_weights,
    output:
        samples="results/solve/{profile}/{task}/{solver}/shard_{shard}.safetensors",
        meta="results/solve/{profile}/{task}/{solver}/shard_{shard}.json",
    log:
        "logs/solve/{profile}/{task}/{solver}/shard_{shard}.log",
    benchmark:
        "results/benchmarks/solve/{profile}/{task}/{solver}/shard_{shard}.tsv"
    params:
        spec=lambda wc: spec(suite_config.shard_spec, wc.task, wc.solver, int(wc.shard)),
    threads: 1  # small batches gain little from a second thread: two solves side by side finish sooner
    resources:
        **cluster("solve"),
    shell:
        "{SUITE} --threads {threads} solve --spec {params.spec:q} --degraded {input.degraded:q} "
        "--samples {output.samples:q} --meta {output.meta:q} 2> {log:q}"
