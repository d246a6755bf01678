# results/bench_speed.md: each speed lever measured side by side (suite/speed.py; config `speed`). A
# measurement takes both cores (threads: 2), so that nothing else runs beside the times it takes.


rule speed_pair:
    input:
        degraded="results/degraded/{profile}/{task}.safetensors",
        prior=solve_weights,
    output:
        "results/speed/{profile}/{lever}/{task}/{solver}.json",
    log:
        "logs/speed/{profile}/{lever}/{task}/{solver}.log",
    params:
        spec=lambda wc: spec(suite_config.speed_spec, wc.lever, wc.task, wc.solver),
    threads: 2
    shell:
        "{SUITE} speed pair --spec {params.spec:q} --degraded {input.degraded:q} --out {output:q} 2> {log:q}"


rule speed_networks:
    input:
        shipped(suite_config.speed_networks_spec(config)["files"]),
    output:
        "results/speed/{profile}/networks.json",
    log:
        "logs/speed/{profile}/networks.log",
    params:
        spec=lambda wc: spec(suite_config.speed_networks_spec),
    threads: 2
    shell:
        "{SUITE} speed networks --spec {params.spec:q} --out {output:q} 2> {log:q}"


rule speed_layouts:
    input:
        shipped(suite_config.speed_networks_spec(config)["files"]),
    output:
        "results/speed/{profile}/layouts.json",
    log:
        "logs/speed/{profile}/layouts.log",
    params:
        spec=lambda wc: spec(suite_config.speed_networks_spec),
    threads: 2
    shell:
        "{SUITE} speed layouts --spec {params.spec:q} --out {output:q} 2> {log:q}"


rule bench_speed:
    input:
        pairs=[f"results/speed/{PROFILE}/{lever}/{task}/{solver}.json"
               for lever, task, solver in suite_config.speed_pairs(config)],
        networks=f"results/speed/{PROFILE}/networks.json",
        layouts=f"results/speed/{PROFILE}/layouts.json",
    output:
        "results/bench_speed.md",
    log:
        "logs/speed/bench_speed.log",
    params:
        title=lambda wc: json.dumps(config.get("speed", {}).get("title", "Speed levers")),
    shell:
        "{SUITE} speed report --title {params.title:q} --networks {input.networks:q} --layouts {input.layouts:q} "
        "--out {output:q} --records {input.pairs:q} 2> {log:q}"
