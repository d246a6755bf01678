# Figures (target `figures`): samples of every shipped generative prior with its quality gate.
GATED = [k for k in ("pixel_ddpm", "latent_dm", "lcm") if k in CHECKPOINTS]


rule figures:
    input:
        expand("results/figures/prior_samples_{prior}.png", prior=GATED),


rule prior_gate:
    input:
        lambda wc: [str(suite_config.ROOT / f) for f in prior_files(wc.prior)],
    output:
        figure="results/figures/prior_samples_{prior}.png",
        gate="results/priors/{prior}_gate.json",
    log:
        "logs/figures/{prior}.log",
    wildcard_constraints:
        prior="|".join(GATED) or "none",
    resources:
        runtime=60,
        mem_mb=8000,
    shell:
        "{PY} -m priors.gates {wildcards.prior} --figure {output.figure} > {output.gate} 2> {log}"
