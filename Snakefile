# Benchmark and paper-replication suite for Bayesian imaging with deep generative priors.
# Default profile: config/embedded.yaml. Others: --configfile config/smoke.yaml (CI) or config/paper.yaml.
from snakemake.utils import min_version

min_version("8.0")

if not config:

    configfile: "config/embedded.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/priors.smk"
include: "rules/solve.smk"
include: "rules/score.smk"
include: "rules/tables.smk"


rule all:
    input:
        expand("results/table_{table}.md", table=TABLES),
