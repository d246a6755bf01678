# Benchmark and paper-replication suite for Bayesian imaging with deep generative priors.
# Default profile: config/embedded.yaml. Others: --config profile=smoke (CI) or profile=paper, or
# --configfile FILE for a config of your own (it may say `extends: embedded.yaml`).
from snakemake.utils import min_version

min_version("8.0")


report: "report/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/priors.smk"
include: "rules/solve.smk"
include: "rules/score.smk"
include: "rules/tables.smk"
include: "rules/w2.smk"
include: "rules/figures.smk"
include: "rules/speed.smk"


# light jobs and downloads run where Snakemake runs (compute nodes are often offline), never submitted to a
# cluster; the others ask what config `cluster` says
localrules: all, bench_speed, fetch_dataset, fetch_checkpoint, figures, retrain, table, bench, calibration_report, w2_table, unknown_record, unknown_table


rule all:
    input:
        expand("results/table_{table}.md", table=TABLES),
        expand("results/bench_{bench}.md", bench=BENCHES),
        expand("results/table_w2_{grid}.md", grid=W2_GRIDS),
        ["results/calibration_latino_pro.md"] if CALIBRATION_PAIRS else [],
