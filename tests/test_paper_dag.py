"""The paper profile end to end on tiny random-weight replicas: its real DAG, with the stand-in hub and download
sites (tests/standin_hub.py) and the stand-in SLURM cluster (tests/slurm_standin.py). The fetch stage runs
where Snakemake runs and pins every file; the compute jobs are submitted through the slurm executor plugin,
run offline, in shards, and read only what the fetch stage placed. What differs from a user's GPU run: the
weights and images (tiny replicas at 32 px, 4 images a task), the device (cpu) and fewer steps for the
solvers that take hundreds; everything else is config/paper.yaml as shipped."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import standin_hub
import yaml
from slurm_standin import install, submitted_rule
from ipbench.store.files import sha256_of

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

TARGETS = ["results/table_ud2m.md", "results/table_latino_pro.md", "results/table_lvtino.md", "results/table_w2_mnist.md"]
VIDEO_TASKS = ["problem_C", "problem_A"]
TINY_TASKS = ["deblur_gaussian", "px_deblur_gaussian"]
SPLIT = ["dps", "latino_pro"]        # the rows run in two shards of 2 (the others: one shard, two mini-batches)
FEWER_STEPS = {"dps": {"steps": 20}, "ldps": {"steps": 20}, "psld": {"steps": 20}, "p2l": {"steps": 20},
               "treg": {"steps": 10}, "diffpir": {"steps": 10}, "i2sb": {"nfe": 19}, "cddb": {"nfe": 19}}


def tiny_paper_config(endpoint: str, datasets: dict) -> dict:
    """config/paper.yaml at 32 px on 4 images per task in mini-batches of 2, on the CPU: the UD2M and LATINO-PRO
    tables cut to one task each, the LVTINO table to Problems C and A on 2 clips at 32 x 48 (every solver of each
    table still runs), the MNIST grid to K, N in {1, 2} on 4 test digits."""
    tasks = {t: {"image_size": 32} for t in TINY_TASKS}
    tasks.update({t: {"image_size": 32, "n_images": 2} for t in VIDEO_TASKS})
    tasks["problem_C"]["frames"] = 41                          # 81 at the published scale: the same path, half the cost
    tasks["deblur_gaussian"]["operator"] = {"name": "gaussian_blur", "sigma": 1.0}   # a 35 x 35 kernel at 32 px: no
    solvers = {s: {"hyper": h} for s, h in FEWER_STEPS.items()}
    for s in SPLIT:
        solvers.setdefault(s, {})["shard_size"] = 2
    return {"extends": "paper.yaml", "device": "cpu", "n_images": 4, "sharding": {"shard_size": 4, "batch_size": 2},
            "datasets": {**datasets, "afhq512_val": {**datasets["afhq512_val"], "image_size": 32},
                         "imagenet256_val": {"image_size": 32},
                         "adobe240_test": {**datasets["adobe240_test"], "image_size": 32, "frame_size": [32, 48]}},
            "tasks": tasks,
            "solvers": solvers,
            "tables": {"ud2m": {"tasks": ["px_deblur_gaussian"]}, "latino_pro": {"tasks": ["deblur_gaussian"]},
                       "lvtino": {"tasks": VIDEO_TASKS}},
            "w2_grids": {"mnist": {"n_images": 4, "K": [1, 2], "N": [1, 2]}}}


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper_dag")
    hub, run = tmp / "hub", tmp / "run"
    standin_hub.build_hub(hub)
    standin_hub.place_bridges(run / "resources")
    with standin_hub.serve(hub) as endpoint:
        overlay = tmp / "checkpoints_overlay.yaml"
        overlay.write_text(yaml.safe_dump(standin_hub.build_downloads(hub, endpoint)))
        config = tmp / "tiny_paper.yaml"
        config.write_text(yaml.safe_dump(tiny_paper_config(
            endpoint, standin_hub.build_datasets(hub, run / "resources", endpoint))))
        bin_dir = install(tmp / "bin")
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_ENDPOINT": endpoint,
               "IPBENCH_CHECKPOINTS": str(overlay), "STANDIN_SLURM_DIR": str(tmp / "cluster")}
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(run),
               "--profile", str(ROOT / "profiles/slurm"), "--configfile", str(config),
               "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5", "--jobs", "2", "--",
               *TARGETS]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3000)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    subs = [json.loads(line) for line in (tmp / "cluster/submissions.jsonl").read_text().splitlines()]
    return run, config, subs


def test_the_paper_tables_come_out_of_the_real_dag(paper_run):
    run, config, subs = paper_run
    from ipbench.suite import config as sc
    cfg = sc.load(config)
    for table in ("ud2m", "latino_pro", "lvtino"):
        text = (run / f"results/table_{table}.md").read_text()
        pairs = sc.table_pairs(cfg, table)
        for task, solver in pairs:
            record = json.loads((run / f"results/score/paper/{task}/{solver}/record.json").read_text())
            assert record["n_images"] == (2 if table == "lvtino" else 4) and record["config"]["profile"] == "paper"
            assert cfg["solvers"][solver]["label"] in text
    assert [len(sc.table_pairs(cfg, t)) for t in ("ud2m", "latino_pro", "lvtino")] == [6, 6, 7]   # VIDUE: C only
    grid = (run / "results/table_w2_mnist.md").read_text()     # the real MNIST test digits, the suite's digit DDPM
    cell = json.loads((run / "results/w2/paper/mnist/K2.json").read_text())
    assert (cell["prior"], cell["adapter"], cell["n_images"]) == ("pixel_ddpm_wide", "ud2m_sr4_mnist_k2", 4)
    assert re.search(r"^\| 2 +\| \d+\.\d+ \(3\.65\) +\| \d+\.\d+ \(2\.25\) +\|$", grid, re.M)   # beside the published K = 2


def test_the_compute_jobs_went_to_the_cluster_with_the_paper_resources(paper_run):
    """The solves and scores were submitted (the fetch, table and light jobs ran locally), each with what the
    paper profile's ``cluster`` section asks: a GPU for a solve with a network (its memory by prior family),
    the CPU partition for scoring and degradation; every shard of every solve was a job of its own."""
    run, config, subs = paper_run
    from ipbench.suite import config as sc
    cfg = sc.load(config)
    jobs = [(*submitted_rule(s), s["options"]) for s in subs]
    rules = {r for r, _, _ in jobs}
    assert rules == {"degrade", "solve", "score", "w2_degrade", "w2_cell"}
    for rule, wc, opts in jobs:
        if rule == "solve":
            lo, hi = sc.shard_spec(cfg, wc["task"], wc["solver"], int(wc["shard"]))["shard"]
            want = sc.job_resources(cfg, "solve", solver=wc["solver"], images=hi - lo)
            gpu = wc["solver"] != "admm_tv"                                  # the one solver without a network
            assert (opts["-p"], opts.get("--gpus")) == (("gpu", "1") if gpu else ("cpu", None))
        elif rule == "w2_cell":
            want = sc.job_resources(cfg, rule)
            assert opts["-p"] == "gpu" and opts["--gpus"] == "1"
        else:
            images = sc.solve_spec(cfg, wc["task"], wc["solver"])["solver_images"] if rule == "score" else None
            want = sc.job_resources(cfg, rule.removeprefix("w2_"), **({"images": images} if images else {}))
            assert opts["-p"] == "cpu" and "--gpus" not in opts
        assert opts["--mem"] == str(want["mem_mb"]) and opts["-t"] == str(want["runtime"])
    pairs = [p for t in ("ud2m", "latino_pro", "lvtino") for p in sc.table_pairs(cfg, t)]
    solves = sorted((wc["task"], wc["solver"], wc["shard"]) for r, wc, _ in jobs if r == "solve")
    assert solves == sorted((t, s, k) for t, s in pairs for k in (("0", "1") if s in SPLIT else ("0",)))
    for task, solver in pairs:                          # every shard's record, gathered by the scoring job
        rec = json.loads((run / f"results/score/paper/{task}/{solver}/record.json").read_text())
        assert [s["shard"] for s in rec["shards"]] == ([[0, 2], [2, 4]] if solver in SPLIT else [[0, rec["n_images"]]])
    print(f"{len(subs)} jobs submitted:", ", ".join(sorted({f"{r} -p {o['-p']} --mem {o['--mem']}" for r, _, o in jobs})))


def test_downloads_came_first_and_are_pinned(paper_run):
    """Every checkpoint the tables read was fetched by the fetch stage at the stand-in hub's commit (hub
    repositories) or from its URL, each file's sha256 in the fetch manifest and the run's own lock; the bridges,
    placed by hand, were locked at first use. Nothing was written into the checkout's resources/."""
    run, _, _ = paper_run
    lock = json.loads((run / "resources/checksums.lock").read_text())
    hub = {"sdxl_base", "dmd2_sdxl_4step_unet", "sdxl_vae_fp16_fix", "sd15", "clip_vit_l14", "ram_deepinv",
           "sdxl_base_unet_fp16", "wan21_t2v_1p3b", "causvid_bidirectional"}
    urls = {"adm_imagenet256_uncond", "inception_clean_fid", "vgg16_torchvision", "pips2_fvmd", "vidue_gopro"}
    pinned = {"vidue_gopro"}           # its sha256 is pinned in the catalogue (the overlay pins the replica's)
    bridges = {"i2sb_imagenet256_blur_gauss"}                                    # the one pixel task's bridge
    fetched = {p.parent.name for p in (run / "resources/checkpoints").glob("*/fetched.json")}
    assert fetched == hub | urls | bridges
    for name in fetched:
        manifest = json.loads((run / f"resources/checkpoints/{name}/fetched.json").read_text())
        assert manifest["files"] and all(
            h == (sha256_of(run / f"resources/checkpoints/{name}/{f}") if name in pinned else lock[f"{name}/{f}"])
            for f, h in manifest["files"].items())
        assert manifest["revision"] == (standin_hub.COMMIT if name in hub else None)
        assert lock.get(f"{name}@main") == (standin_hub.COMMIT if name in hub else None)
    assert all(lock[d] for d in ("afhq512_val", "imagenet256_val", "mnist_test", "adobe240_test"))
    checkout_lock = ROOT / "resources/checksums.lock"
    assert not checkout_lock.exists() or "adm_imagenet256_uncond/256x256_diffusion_uncond.pt" not in checkout_lock.read_text()
