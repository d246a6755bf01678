# UD2M's MNIST study: a K x N grid of conditional W2 (results/table_w2_<grid>.md). One job per K
# (its distilled adapter, every N); the grid's task is degraded on its own number of test digits.
W2_GRIDS = list(config.get("w2_grids", {}))


wildcard_constraints:
    grid="|".join(W2_GRIDS) or "^$",


rule w2_degrade:
    input:
        lambda wc: dataset_file_of(config["w2_grids"][wc.grid]["task"]),
    output:
        "results/w2/{profile}/{grid}/degraded.safetensors",
    log:
        "logs/w2/{profile}/{grid}/degrade.log",
    params:
        spec=lambda wc: spec(suite_config.w2_degrade_spec, wc.grid),
        dataset=lambda wc, input: ["--dataset-file", input[0], "--lock", LOCK] if input else [],
    resources:
        **cluster("degrade"),
    shell:
        "{SUITE} degrade --spec {params.spec:q} --out {output:q} {params.dataset:q} 2> {log:q}"


rule w2_cell:
    input:
        degraded="results/w2/{profile}/{grid}/degraded.safetensors",
        weights=lambda wc: shipped(suite_config.w2_files(config, wc.grid, wc.K)),
    output:
        "results/w2/{profile}/{grid}/K{K}.json",
    log:
        "logs/w2/{profile}/{grid}/K{K}.log",
    params:
        spec=lambda wc: spec(suite_config.w2_cell_spec, wc.grid, wc.K),
    threads: 2
    resources:
        **cluster("w2_cell"),
    shell:
        "{SUITE} --threads {threads} w2cell --spec {params.spec:q} --degraded {input.degraded:q} "
        "--out {output:q} 2> {log:q}"


rule w2_table:
    input:
        cells=lambda wc: expand("results/w2/{profile}/{grid}/K{K}.json", profile=PROFILE, grid=wc.grid,
                                K=suite_config.w2_trained_K(config, wc.grid)),
        paper=f"{workflow.basedir}/report/paper_numbers.csv",
    output:
        md="results/table_w2_{grid}.md",
        csv=report("results/table_w2_{grid}.csv", caption="../report/captions/w2_table.rst", category="Tables",
                   labels={"table": "w2_{grid}"}),
    log:
        "logs/table/w2_{grid}.log",
    params:
        spec=lambda wc: spec(suite_config.w2_table_spec, wc.grid),
    shell:
        "{SUITE} w2table --spec {params.spec:q} --paper-numbers {input.paper:q} --out {output.md:q} --csv {output.csv:q} "
        "{input.cells:q} 2> {log:q}"


ruleorder: w2_table > unknown_table


POSTERIOR_GRIDS = [g for g in W2_GRIDS if suite_config.w2_figure_spec(config, g)]


rule posterior_figure:
    input:
        degraded="results/w2/" + PROFILE + "/{grid}/degraded.safetensors",
        weights=lambda wc: shipped(suite_config.w2_files(config, wc.grid, config["w2_grids"][wc.grid]["figure"]["K"])),
    output:
        report("results/figures/posterior_{grid}.png", caption="../report/captions/posterior.rst", category="Figures",
               labels={"figure": "posterior {grid}"}),
    log:
        "logs/figures/posterior_{grid}.log",
    params:
        spec=lambda wc: spec(suite_config.w2_figure_spec, wc.grid),
    resources:
        **cluster("figure"),
    shell:
        "{SUITE} figure posterior --spec {params.spec:q} --degraded {input.degraded:q} --out {output:q} 2> {log:q}"
