"""The DAG end to end on the smoke profile: metrics against committed values (the CI regression
of metrics), resuming after a kill, bad targets, the SLURM profile and a corrupt checkpoint."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "tests/expected/smoke_metrics.json"
pytestmark = pytest.mark.slow  # every test here runs the DAG; `pytest -m "not slow"` leaves them out

TOLERANCE = {"psnr": (0.05, 0.0), "ssim": (2e-3, 0.0), "lpips": (2e-3, 0.02), "fid": (0.05, 0.02), "kid": (2e-4, 0.02)}


def snakemake(workdir, *args, check=True, **kw):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    t0 = time.time()
    out = snakemake(workdir, "--config", "profile=smoke", "--", "results/table_deblur.md",
                    "results/calibration_latino_pro.md", check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir, time.time() - t0


def _collect(workdir):
    got = {}
    for rec in sorted((workdir / "results/score/smoke").glob("*/*/record.json")):
        r = json.loads(rec.read_text())
        got[f"{r['task']}/{r['solver']}"] = {**r["metrics"], "nfe_per_image": r["nfe"]["per_image"],
                                             "n_images": r["n_images"]}
    return got


def test_smoke_metrics_match_committed_values(smoke_run):
    workdir, _ = smoke_run
    got = _collect(workdir)
    assert len(got) == 26          # 6 prior-free runs, 7 latent rows on deblur_gaussian, DiffPIR, DDRM, UD2M
    #                                and UD2M+RAM on the two pixel deblurring tasks; the calibration report's
    #                                paper-form LATINO-PRO on deblur_gaussian and its four rows on sr16
    if os.environ.get("UPDATE_EXPECTED"):
        EXPECTED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(EXPECTED.read_text())
    assert sorted(got) == sorted(expected), "the set of smoke runs changed"
    moved = []
    for key, exp in expected.items():
        assert got[key]["nfe_per_image"] == exp["nfe_per_image"] and got[key]["n_images"] == exp["n_images"]
        for metric, (abs_tol, rel_tol) in TOLERANCE.items():
            if abs(got[key][metric] - exp[metric]) > abs_tol + rel_tol * abs(exp[metric]):
                moved.append(f"{key} {metric}: expected {exp[metric]:.5g}, got {got[key][metric]:.5g}")
    assert not moved, "metrics moved:\n" + "\n".join(moved)


def test_sharded_solves_are_jobs_gathered_by_scoring(smoke_run):
    """The smoke profile splits UD2M and DDRM into two shard jobs of 4 images (UD2M in mini-batches of 2): each
    shard is its own job with its own samples and costs, scoring gathers them, and their metrics are those of
    an unsplit solve (the committed values above)."""
    workdir, _ = smoke_run
    for task in ("px_deblur_gaussian", "px_deblur_uniform"):
        for solver, batch in (("ud2m", 2), ("ddrm", 4)):
            rec = json.loads((workdir / f"results/score/smoke/{task}/{solver}/record.json").read_text())
            assert [(s["shard"], s["batch_size"]) for s in rec["shards"]] == [([0, 4], batch), ([4, 8], batch)]
            assert rec["nfe"]["total"] == sum(s["nfe_total"] for s in rec["shards"])
            assert rec["per_image"]["index"] == list(range(8))
            for k in range(2):
                assert (workdir / f"results/solve/smoke/{task}/{solver}/shard_{k}.safetensors").exists()
                assert (workdir / f"results/benchmarks/solve/smoke/{task}/{solver}/shard_{k}.tsv").exists()
    rec = json.loads((workdir / "results/score/smoke/deblur_gaussian/latino_pro/record.json").read_text())
    assert [(s["shard"], s["batch_size"]) for s in rec["shards"]] == [([0, 8], 4)]


def test_calibration_report_from_the_smoke_records(smoke_run):
    """The calibration report reads the smoke run's records and samples: four rows per latent task, the
    calibrated prompts kept beside LATINO-PRO's samples, every row's digit reading from its record."""
    workdir, _ = smoke_run
    text = (workdir / "results/calibration_latino_pro.md").read_text()
    for label in ("LATINO (8 steps)", "LATINO-PRO, the paper's SAPG", "LATINO-PRO |", "true caption (oracle)"):
        assert text.count(label) == 2, label
    rec = json.loads((workdir / "results/score/smoke/sr16/latino_pro/record.json").read_text())
    assert len(rec["per_image"]["digit_accuracy"]) == 8 and 0 <= rec["metrics"]["digit_accuracy"] <= 1
    from safetensors.torch import load_file
    samples = load_file(str(workdir / "results/solve/smoke/sr16/latino_pro/samples.safetensors"))
    assert samples["prompt_embeds"].shape[0] == 8


def test_the_report_embeds_the_tables_with_their_captions(smoke_run):
    """``snakemake --report`` shows every table marked for it (its CSV, with the caption's profile and seeds)."""
    import pandas as pd
    workdir, _ = smoke_run
    frame = pd.read_csv(workdir / "results/table_deblur.csv")
    assert {"profile", "task", "method", "psnr", "psnr_sem", "psnr_published", "git_revision"} <= set(frame.columns)
    assert (frame.profile == "smoke").all() and (frame[frame.status == "measured"].n_images > 0).all()
    out = snakemake(workdir, "--config", "profile=smoke", "--report", "results/report.html", "--",
                    "results/table_deblur.md", check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    html = (workdir / "results/report.html").read_text()
    assert "table_deblur.csv" in html and "sha256(profile/task/role/index)" in html


def test_smoke_table_and_nothing_left_to_do(smoke_run):
    workdir, _ = smoke_run
    table = (workdir / "results/table_deblur.md").read_text()
    import re
    table = "\n".join(re.sub(r" {2,}", " ", line) for line in table.splitlines())     # tabulate's padding
    assert "Profile `smoke`" in table and "| ADMM-TV | 0 |" in table and "(26.25)" in table
    dry = snakemake(workdir, "-n", "--config", "profile=smoke", "--", "results/table_deblur.md")
    assert "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_without_redoing_finished_jobs(tmp_path, sig):
    """SIGTERM: the same command finishes the run. SIGKILL of the whole process group (kill -9, an OOM, a lost
    node) leaves Snakemake's lock behind: the README's recovery, ``--unlock`` then the same command."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--cores", "1", "--config", "profile=smoke", "--", "results/table_sr4.md"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    records = tmp_path / "results/score/smoke"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(records.glob("*/*/record.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    assert not (tmp_path / "results/table_sr4.md").exists()
    finished = list(records.glob("*/*/record.json"))       # what survived the kill is complete
    assert finished, "no job finished before the kill"
    stamp = {p: p.stat().st_mtime_ns for p in finished}
    rerun = cmd
    if sig == signal.SIGKILL:     # Snakemake's lock stays, and a job killed before it noted its end is incomplete
        again = subprocess.run(cmd, capture_output=True, text=True)
        text = again.stdout + again.stderr
        assert again.returncode != 0 and ("cannot be locked" in text or "Incomplete files:" in text), text[-2000:]
        incomplete = {tmp_path / line.strip() for line in text.split("Incomplete files:")[-1].splitlines()
                      if line.strip().endswith("record.json")} if "Incomplete files:" in text else set()
        stamp = {p: t for p, t in stamp.items() if p not in incomplete}
        assert stamp, "every record was incomplete"
        unlock = subprocess.run(cmd[:-2] + ["--unlock", "--"] + cmd[-1:], capture_output=True, text=True)
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        rerun = cmd[:-2] + ["--rerun-incomplete", "--"] + cmd[-1:]          # the README's recovery
    out = subprocess.run(rerun, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "results/table_sr4.md").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items()), "a finished job was redone"
    from ipbench.suite import config as sc
    assert len(list(records.glob("*/*/record.json"))) == len(sc.table_pairs(sc.select({"profile": "smoke"}), "sr4"))


def test_bad_targets_list_the_valid_names(tmp_path):
    out = snakemake(tmp_path, "-n", "results/table_deblr.md", check=False)
    assert out.returncode != 0 and "unknown table 'deblr'; valid tables: deblur" in out.stdout + out.stderr
    out = snakemake(tmp_path, "-n", "results/score/embedded/sr16/dpss/record.json", check=False)
    assert ("unknown solver 'dpss'; valid solvers: admm_tv, cddb, ddrm, diffpir, dps, i2sb, latino, latino_pro, latino_pro_paper, "
            "latino_true_caption, ldps, lvtino, p2l, pinv, psld, treg, ud2m, ud2m_ram, vision_xl") in out.stdout + out.stderr   # configured ones
    out = snakemake(tmp_path, "-n", "--config", "profile=paperr", check=False)
    assert "unknown profile 'paperr'; valid profiles: embedded, paper, smoke" in out.stdout + out.stderr


def test_slurm_profile_plans(tmp_path):
    for extra in ([], ["--config", "profile=paper", "--"]):
        out = snakemake(tmp_path, "-n", "--profile", str(ROOT / "profiles/slurm"), *extra, "results/table_deblur.md")
        assert "This was a dry-run" in out.stdout + out.stderr


def test_corrupt_checkpoint_stops_with_a_clear_error(tmp_path):
    import ipbench.suite.config as sc
    from ipbench.metrics.digit_net import DigitNet
    from ipbench.store.files import ChecksumError, load_weights
    ck = sc.checkpoint("digit_net")
    bad = tmp_path / "digit_net.safetensors"
    shutil.copy(ROOT / ck["path"], bad)
    with open(bad, "r+b") as f:
        f.seek(-16, 2)
        f.write(b"\0" * 16)
    with pytest.raises(ChecksumError, match=f"digit_net.safetensors: expected sha256 {ck['sha256']}"):
        load_weights(DigitNet(), bad, ck["sha256"])
    with pytest.raises(FileNotFoundError, match="missing file"):
        load_weights(DigitNet(), tmp_path / "none.safetensors", ck["sha256"])
