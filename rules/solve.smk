# One solver on all measurements of one task, as one batch.


rule solve:
    input:
        degraded="results/degraded/{profile}/{task}.safetensors",
        prior=solve_weights,
    output:
        samples="results/solve/{profile}/{task}/{solver}/samples.safetensors",
        meta="results/solve/{profile}/{task}/{solver}/meta.json",
    log:
        "logs/solve/{profile}/{task}/{solver}.log",
    benchmark:
        "results/benchmarks/solve/{profile}/{task}/{solver}.tsv"
    params:
        spec=lambda wc: spec(suite_config.solve_spec, wc.task, wc.solver),
    threads: 1  # small batches gain little from a second thread: two solves side by side finish sooner
    resources:
        runtime=60,
        mem_mb=8000,
    shell:
        "{SUITE} --threads {threads} solve --spec {params.spec:q} --degraded {input.degraded:q} "
        "--samples {output.samples:q} --meta {output.meta:q} 2> {log:q}"
