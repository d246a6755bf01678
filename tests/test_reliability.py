"""Bad input is named before any job runs, nothing reaches a shell unquoted, and a rerun writes the same bytes."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def plan(workdir, *args, snakefile=ROOT / "Snakefile"):
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(snakefile), "--directory", str(workdir), "--cores", "1", *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def config_file(tmp_path, text: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text("extends: embedded.yaml\nprofile: mine\n" + text)
    return str(path)


@pytest.mark.parametrize("target, reason", [
    ("results/score/embedded/deblur_gaussian/ud2m/record.json",
     "solver 'ud2m' does not run on task 'deblur_gaussian': the row runs only on sr4_mnist, px_deblur_gaussian"),
    ("results/score/embedded/px_jpeg10/ddrm/record.json",
     "solver 'ddrm' does not run on task 'px_jpeg10': the row runs only on"),
    ("results/score/embedded/px_sr4/latino/record.json",
     "solver 'latino' does not run on task 'px_sr4': its prior is a consistency prior (latent family) and the task is of the pixel family"),
])
def test_a_pair_the_config_excludes_is_refused_with_the_reason(tmp_path, target, reason):
    rc, out = plan(tmp_path, target)
    assert rc != 0 and reason in out
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("entry, message", [
    ("tasks:\n  px_sr4:\n    sigma_y: 1000\n", "invalid config at tasks/px_sr4/sigma_y: 1000 is greater than the maximum of 1"),
    ("tasks:\n  deblur_gaussian:\n    operator: {name: gaussian_blur, variance: -3}\n",
     "tasks/deblur_gaussian/operator"),
    ("tasks:\n  px_deblur_uniform:\n    operator: {name: uniform_blur, kernel_size: abc}\n",
     "invalid config at tasks/px_deblur_uniform/operator/kernel_size: 'abc' is not of type 'integer'"),
    ("tasks:\n  px_sr4:\n    operator: {name: downsampling, factor: 5}\n",
     "tasks/px_sr4: the down-sampling factor 5 does not divide image_size 32"),
    ("tasks:\n  px_sr4:\n    operator: {name: downsampling, factor: 4, filtr: block}\n",
     "unknown key 'filtr' at tasks/px_sr4/operator (did you mean 'filter'?)"),
    ("tasks:\n  px_deblur_gaussian:\n    image_size: 64\n",
     "task 'px_deblur_gaussian' has image_size 64, but its prior 'pixel_ddpm_wide' generates 32 x 32 images"),
])
def test_task_parameters_are_checked_when_the_dag_is_planned(tmp_path, entry, message):
    rc, out = plan(tmp_path, "--configfile", config_file(tmp_path, entry), "--", "results/table_deblur.md")
    assert rc != 0 and message in out, out[-1500:]
    assert "Traceback" not in out


@pytest.mark.slow            # plans the DAG in a fresh process (about 10 s)
def test_a_key_given_on_the_command_line_overrides_the_profile(tmp_path):
    rc, out = plan(tmp_path, "--config", "profile=smoke", "n_images=4", "--", "results/table_deblur.md")
    assert rc == 0, out[-1500:]
    import ipbench.suite.config as sc
    assert sc.select({"profile": "smoke", "n_images": 4})["n_images"] == 4
    assert sc.select({"n_images": 5})["profile"] == "embedded"


@pytest.mark.slow            # one fresh process per bad input (about 10 s)
def test_the_command_line_turns_every_error_into_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: x\ntasks: [\n")
    out = subprocess.run([sys.executable, "-m", "ipbench", "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{bad} is not valid YAML" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "ipbench", "solve", "--spec", "{}", "--degraded", "x", "--samples", "y",
                          "--meta", "z"], capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in out.stderr


def test_a_truncated_intermediate_is_named(tmp_path):
    from ipbench.suite import io
    path = tmp_path / "degraded.safetensors"
    io.write_tensors(path, {"x": torch.ones(4)})
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ValueError, match=f"{path} is not a readable safetensors file .*delete it and run again"):
        io.read_tensors(path)


def test_intactness_of_a_safetensors_file_is_read_from_its_header(tmp_path):
    from ipbench.store.files import safetensors_intact
    from ipbench.suite import io
    path = tmp_path / "a.safetensors"
    io.write_tensors(path, {"x": torch.ones(40), "y": torch.zeros(3, 2)}, {"task": "t"})
    assert safetensors_intact(path)
    whole = path.read_bytes()
    for broken in (whole[:-1], whole[:30], whole + b"\0", b"", b"not a file at all"):
        path.write_bytes(broken)
        assert not safetensors_intact(path)
    assert not safetensors_intact(tmp_path / "missing.safetensors")


@pytest.mark.slow
def test_a_damaged_intermediate_is_named_removed_and_rebuilt_when_needed(tmp_path):
    """A truncated degraded file (a full disk, a copy cut short) is named and removed when the DAG is planned;
    a job that needs it rebuilds it first, byte-identical to the first build, and the record already computed
    from it is not redone."""
    def run(target):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--cores", "2", "--config", "profile=smoke", "--", target]
        return subprocess.run(cmd, capture_output=True, text=True)
    assert run("results/score/smoke/px_sr4/pinv/record.json").returncode == 0
    degraded = tmp_path / "results/degraded/smoke/px_sr4.safetensors"
    record = tmp_path / "results/score/smoke/px_sr4/pinv/record.json"
    whole, stamp = degraded.read_bytes(), record.stat().st_mtime_ns
    degraded.write_bytes(whole[: len(whole) // 2])
    out = run("results/score/smoke/px_sr4/admm_tv/record.json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "results/degraded/smoke/px_sr4.safetensors is damaged" in out.stderr
    assert degraded.read_bytes() == whole
    assert record.stat().st_mtime_ns == stamp


@pytest.mark.slow            # fresh processes (about 10 s)
def test_identical_tensors_give_identical_bytes_in_every_process(tmp_path):
    code = ("import sys, torch; from ipbench.suite import io; "
            "io.write_tensors(sys.argv[1], {'x': torch.arange(6.0), 'index': torch.arange(3)}, "
            "{'task': 'px_sr4', 'profile': 'smoke', 'a': 1, 'b': 2, 'c': 3})")
    hashes = set()
    for i in range(4):
        out = tmp_path / f"{i}.safetensors"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True)
        hashes.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(hashes) == 1


def test_training_arguments_cannot_reach_a_shell(tmp_path, monkeypatch):
    """A card whose command carries a shell substitution is refused by ``install --from-card``; the retrain rule
    passes every argument as one quoted token."""
    from ipbench.training import install
    from ipbench.training.commands import check_train_args, train_cli_tokens, train_spec_of
    from ipbench.store.files import save_tensors
    evil = 'python -m ipbench.training.ud2m_distill --task "$(touch pwned)" --K 3'
    with pytest.raises(ValueError, match=r"the value of 'task', '\$\(touch pwned\)', is not a number"):
        train_spec_of(evil)
    src = tmp_path / "a.safetensors"
    save_tensors({"w": torch.ones(2)}, src, metadata={"card": json.dumps({"command": evil})})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is not a number, a switch or a plain name"):
        install.main([str(src), "ud2m_x", "--from-card", "--needs", "pixel_ddpm_wide"])
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(ValueError, match="'a b' is not an option name"):
        check_train_args({"a b": 1})
    assert train_cli_tokens({"task": "px_sr4", "bf16": True, "lr": 0.001}) == ["--task", "px_sr4", "--bf16", "--lr", "0.001"]
    rules = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    import re
    unquoted = re.findall(r"\{(?:input|output|log|params|wildcards)(?:\.\w+)?\}", rules)
    assert not unquoted, unquoted


@pytest.mark.slow
def test_a_second_checkout_in_a_path_with_a_space_and_a_quote_runs_its_own_code(tmp_path):
    """Jobs run the code of the Snakefile's checkout (a marker put in the copy shows up in its job's log), and
    every path reaches the shell quoted; a shipped weights file missing from the copy is named while planning."""
    clone = tmp_path / "it's a clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".venv", ".git", "results", "logs", ".snakemake",
                                                                "__pycache__", "*.egg-info"))
    stages = clone / "suite" / "stages.py"
    stages.write_text(stages.read_text().replace('    """Draw y = A(x) + sigma_y n', '    log.info("MARKER of the clone")\n    """Draw y = A(x) + sigma_y n', 1))
    work = tmp_path / "work dir"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(clone / "Snakefile"), "--directory", str(work), "--cores", "1",
           "--config", "profile=smoke", "--", "results/score/smoke/px_sr4/pinv/record.json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "MARKER of the clone" in (work / "logs/degrade/smoke/px_sr4.log").read_text()
    assert "MARKER" not in (ROOT / "suite" / "stages.py").read_text()
    (clone / "priors/weights/digit_net.safetensors").unlink()
    rc, text = plan(tmp_path / "other", "--config", "profile=smoke", "--", "results/table_sr4.md",
                    snakefile=clone / "Snakefile")
    assert rc != 0 and "shipped weights missing: " in text and "digit_net.safetensors" in text
