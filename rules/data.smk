# Measurements: y = A(x) + sigma_y n for the test images of a task, seeded per image.


rule degrade:
    output:
        "results/degraded/{profile}/{task}.safetensors",
    log:
        "logs/degrade/{profile}/{task}.log",
    params:
        spec=lambda wc: spec(suite_config.degrade_spec, wc.task),
    resources:
        runtime=10,
        mem_mb=4000,
    shell:
        "{PY} -m suite degrade --spec {params.spec:q} --out {output} 2> {log}"
