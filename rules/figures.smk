# Figures (target `figures`): samples of every shipped generative prior with its quality gate, a
# restoration grid per task, and LATINO-PRO's prompt calibration.
GATED = (suite_config.trained_by("ipbench.training.pixel_ddpm") + [k for k in ("latent_dm", "lcm") if k in CHECKPOINTS]
         + suite_config.trained_by("ipbench.training.video_dm") + suite_config.trained_by("ipbench.training.vcm"))
FIGURE_TASKS = suite_config.figure_tasks(config)
VIDEO_GIFS = [f"results/figures/clips/{t}/{s}.gif" for t in suite_config.video_figure_tasks(config)
              for s in suite_config.figure_solvers(config, t)]
CALIBRATION_TASKS = suite_config.calibration_tasks(config)


rule figures:
    input:
        expand("results/figures/prior_samples_{prior}.png", prior=GATED),
        expand("results/figures/restoration_{task}.png", task=FIGURE_TASKS),
        expand("results/figures/prompt_calibration_{task}.png", task=CALIBRATION_TASKS),
        expand("results/figures/posterior_{grid}.png", grid=POSTERIOR_GRIDS),
        VIDEO_GIFS,


rule restoration_figure:
    input:
        degraded=f"results/degraded/{PROFILE}/{{task}}.safetensors",
        samples=lambda wc: [f"results/solve/{PROFILE}/{wc.task}/{s}/samples.safetensors"
                            for s in suite_config.figure_solvers(config, wc.task)],
    output:
        report("results/figures/restoration_{task}.png", caption="../report/captions/restoration.rst",
               category="Figures", labels={"figure": "restorations {task}"}),
    log:
        "logs/figures/restoration_{task}.log",
    params:
        spec=lambda wc: spec(suite_config.restoration_spec, wc.task),
    resources:
        **cluster("figure"),
    shell:
        "{SUITE} --threads {threads} figure restoration --spec {params.spec:q} --degraded {input.degraded:q} --out {output:q} "
        "--samples {input.samples:q} 2> {log:q}"


rule clip_gif:
    input:
        degraded=f"results/degraded/{PROFILE}/{{task}}.safetensors",
        samples=f"results/solve/{PROFILE}/{{task}}/{{solver}}/samples.safetensors",
    output:
        report("results/figures/clips/{task}/{solver}.gif", caption="../report/captions/clip.rst",
               category="Figures", labels={"figure": "clip {task} {solver}"}),
    log:
        "logs/figures/clip_{task}_{solver}.log",
    params:
        spec=lambda wc: spec(suite_config.restoration_spec, wc.task),
    resources:
        **cluster("figure"),
    shell:
        "{SUITE} --threads {threads} figure gif --spec {params.spec:q} --degraded {input.degraded:q} --out {output:q} "
        "--samples {input.samples:q} 2> {log:q}"


rule calibration_figure:
    input:
        degraded=f"results/degraded/{PROFILE}/{{task}}.safetensors",
        prior=lambda wc: shipped(suite_config.prior_files(config, "latino_pro")),
    output:
        report("results/figures/prompt_calibration_{task}.png", caption="../report/captions/calibration.rst",
               category="Figures", labels={"figure": "prompt calibration {task}"}),
    log:
        "logs/figures/prompt_calibration_{task}.log",
    params:
        spec=lambda wc: spec(suite_config.calibration_spec, wc.task),
    threads: 64  # every core: Snakemake caps a rule's threads at --cores
    resources:
        **cluster("figure"),
    shell:
        "{SUITE} --threads {threads} figure calibration --spec {params.spec:q} --degraded {input.degraded:q} --out {output:q} 2> {log:q}"


rule prior_gate:
    input:
        lambda wc: shipped(prior_files(wc.prior)),
    output:
        figure=report("results/figures/prior_samples_{prior}.png", caption="../report/captions/prior_samples.rst",
                      category="Figures", labels={"figure": "prior samples {prior}"}),
        gate="results/priors/{prior}_gate.json",
    log:
        "logs/figures/{prior}.log",
    wildcard_constraints:
        prior="|".join(GATED) or "none",
    resources:
        **cluster("figure"),
    shell:
        "{RUN} ipbench.training.gates {wildcards.prior:q} --figure {output.figure:q} > {output.gate:q} 2> {log:q}"
