# Markdown tables: measured numbers beside the published ones (report/paper_numbers.csv).
CALIBRATION_PAIRS = suite_config.calibration_report_pairs(config)


rule table:
    input:
        records=table_records,
        paper=f"{workflow.basedir}/report/paper_numbers.csv",
    output:
        md="results/table_{table}.md",
        csv=report("results/table_{table}.csv", caption="../report/captions/table.rst", category="Tables",
                   labels={"table": "{table}"}),
    log:
        "logs/table/{table}.log",
    params:
        spec=lambda wc: spec(suite_config.table_spec, wc.table),
    shell:
        "{SUITE} --threads {threads} table --spec {params.spec:q} --paper-numbers {input.paper:q} "
        "--out {output.md:q} --csv {output.csv:q} {input.records:q} 2> {log:q}"


rule bench:
    input:
        records=lambda wc: table_records(config["benches"][wc.bench]["table"]),
        paper=f"{workflow.basedir}/report/paper_numbers.csv",
    output:
        "results/bench_{bench}.md",
    log:
        "logs/bench/{bench}.log",
    params:
        spec=lambda wc: spec(suite_config.bench_spec, wc.bench),
    shell:
        "{SUITE} --threads {threads} bench --spec {params.spec:q} --paper-numbers {input.paper:q} --out {output:q} "
        "{input.records:q} 2> {log:q}"


def unknown_table_name(wildcards):
    """A table target that no rule makes: fail while the DAG is built, listing the valid table names."""
    grids = [f"w2_{g}" for g in config.get("w2_grids", {})]
    if wildcards.name not in grids and wildcards.name not in config["tables"]:
        valid = ", ".join(sorted(config["tables"]) + grids)
        raise ValueError(f"unknown table {wildcards.name!r}; valid tables: {valid}")
    if wildcards.name in config["tables"]:        # a known table whose runs cannot be planned: say why
        feature_weights()
        for task, solver in suite_config.table_pairs(config, wildcards.name):
            solve_weights(Wildcards(task=task, solver=solver))
    return []              # a known table whose runs can be planned: the real rule makes it (ruleorder)


rule unknown_table:
    input:
        unknown_table_name,
    output:
        "results/table_{name}.md",
    shell:
        "echo 'error: no rule makes {output:q} with this profile' >&2; exit 1"


ruleorder: table > unknown_table


rule calibration_report:
    input:
        degraded=[f"results/degraded/{PROFILE}/{t}.safetensors" for t, _ in CALIBRATION_PAIRS],
        records=[f"results/score/{PROFILE}/{t}/{s}/record.json" for t, s in CALIBRATION_PAIRS],
        samples=[f"results/solve/{PROFILE}/{t}/{s}/samples.safetensors" for t, s in CALIBRATION_PAIRS],
    output:
        "results/calibration_latino_pro.md",
    log:
        "logs/table/calibration_latino_pro.log",
    params:
        spec=lambda wc: spec(suite_config.calibration_report_spec),
    shell:
        "{SUITE} --threads {threads} calibration --spec {params.spec:q} --out {output:q} "
        "--degraded {input.degraded:q} --records {input.records:q} --samples {input.samples:q} 2> {log:q}"
