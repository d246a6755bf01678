"""The SLURM path for real: the smoke profile through Snakemake's slurm executor plugin and the repository's
SLURM profile, against a stand-in cluster (tests/slurm_standin.py: sbatch / srun / squeue / sacct that run each
job on this machine and record its options). The jobs ask what the paper profile's `cluster` section says;
one shard's first job is lost with its node and is retried alone."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slurm_standin import install, submitted_rule

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_the_smoke_profile_runs_through_the_slurm_executor(tmp_path):
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    config = tmp_path / "smoke_on_slurm.yaml"
    config.write_text(yaml.safe_dump({"extends": "smoke.yaml", "profile": "smoke", "cluster": paper["cluster"]}))
    bin_dir = install(tmp_path / "bin")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "STANDIN_SLURM_DIR": str(tmp_path / "cluster"), "STANDIN_SLURM_FAIL": "solver=ud2m,shard=1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path / "run"),
           "--profile", str(ROOT / "profiles/slurm"), "--configfile", str(config),
           "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5", "--jobs", "4", "--",
           "results/table_sr4.md"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (tmp_path / "run/results/table_sr4.md").exists()

    subs = [json.loads(line) for line in (tmp_path / "cluster/submissions.jsonl").read_text().splitlines()]
    jobs = [(*submitted_rule(s), s["options"]) for s in subs]
    rules = {r for r, _, _ in jobs}
    assert {"degrade", "solve", "score"} <= rules and not rules & {"table", "bench", "all"}   # light ones local
    from ipbench.suite import config as sc
    cfg = sc.load(config)
    for rule, wc, opts in jobs:
        if rule == "solve":
            lo, hi = sc.shard_spec(cfg, wc["task"], wc["solver"], int(wc["shard"]))["shard"]
            want = sc.job_resources(cfg, "solve", solver=wc["solver"], images=hi - lo)
        elif rule == "score":
            want = sc.job_resources(cfg, "score", images=sc.solve_spec(cfg, wc["task"], wc["solver"])["solver_images"])
        else:
            want = sc.job_resources(cfg, rule)
        assert opts["-p"] == want["slurm_partition"] and opts["--mem"] == str(want["mem_mb"])
        assert opts["-t"] == str(want["runtime"]) and opts.get("--gpus") == (str(want["gpu"]) if want["gpu"] else None)
        if rule == "solve" and wc["solver"] == "ud2m":        # a pixel-prior solve: a GPU
            assert opts["-p"] == "gpu" and opts["--gpus"] == "1" and opts["--mem"] == "32000"
        if rule in ("score", "degrade") or wc.get("solver") in ("pinv", "admm_tv"):   # no network: CPU partition
            assert opts["-p"] == "cpu" and "--gpus" not in opts
    shards = sorted((wc["task"], wc["shard"]) for rule, wc, _ in jobs if rule == "solve" and wc["solver"] == "ud2m")
    lost = [(t, k) for t, k in set(shards) if shards.count((t, k)) == 2]
    assert len(lost) == 1 and lost[0][1] == "1", shards   # the lost shard was resubmitted, once; no other was
    assert len(shards) == len(set(shards)) + 1
    rec = json.loads((tmp_path / f"run/results/score/smoke/{lost[0][0]}/ud2m/record.json").read_text())
    assert [s["shard"] for s in rec["shards"]] == [[0, 4], [4, 8]]
    print(f"{len(subs)} jobs submitted:", ", ".join(sorted(f"{r}:{o['-p']}" for r, _, o in jobs)))
