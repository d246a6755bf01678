"""The config is strict: a misspelt key anywhere, or a keyword that the solver's ``solve`` does not take,
fails when the config loads, with the key, where it is, the valid keys and the closest one; and planning the
DAG reads the solvers' prior families and keywords without importing torch."""
import copy
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import ipbench.suite.config as sc
from ipbench.suite.registry import SOLVERS, STAGE_ARGUMENTS, solve_keywords, solver_module

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def base():
    return sc.load(sc.CONFIG_DIR / "embedded.yaml")


def error_of(cfg) -> str:
    with pytest.raises(ValueError) as err:
        sc.check(cfg)
    return str(err.value)


def test_a_misspelt_top_level_key(base):
    cfg = copy.deepcopy(base)
    cfg["n_imagse"] = cfg.pop("n_images")
    msg = error_of(cfg)
    assert "unknown key 'n_imagse' at the top level (did you mean 'n_images'?); valid: " in msg
    assert "bare_timing_every, benches, cluster, data, datasets, device" in msg


def test_a_misspelt_solver_key(base):
    cfg = copy.deepcopy(base)
    cfg["solvers"]["latino"]["hyperr"] = cfg["solvers"]["latino"].pop("hyper")
    msg = error_of(cfg)
    assert "unknown key 'hyperr' at solvers/latino (did you mean 'hyper'?); valid: batch_size, hyper, label, module, " in msg


def test_a_misspelt_keyword_of_solve(base):
    cfg = copy.deepcopy(base)
    cfg["solvers"]["latino"]["hyper"]["deltaa"] = 0.5
    msg = error_of(cfg)
    assert "unknown keyword of latino's solve 'deltaa' at solvers/latino/hyper (did you mean 'delta'?)" in msg
    assert "valid: delta, delta_late, delta_rule, final, init, prompts, steps, t_switch" in msg


def test_keywords_forwarded_to_the_calibration_and_per_task_entries_are_checked(base):
    cfg = copy.deepcopy(base)
    cfg["solvers"]["latino_pro"]["per_task"]["sr16"]["radiuss"] = 3.0
    cfg["solvers"]["diffpir"]["per_task"]["px_sr44"] = {"lam": 1.0}
    msg = error_of(cfg)
    assert "unknown keyword of latino_pro's solve 'radiuss' at solvers/latino_pro/per_task/sr16 (did you mean 'radius'?)" in msg
    assert "unknown task 'px_sr44' at solvers/diffpir/per_task (did you mean 'px_sr4'?)" in msg


def test_a_w2_grid_names_checkpoints_that_exist_and_fit_together(base):
    """A grid's adapters must have been distilled from the grid's prior: the paper profile runs the digit DDPM
    the MNIST adapters came from, not its own pixel prior (ADM)."""
    cfg = copy.deepcopy(base)
    cfg["w2_grids"]["mnist"]["adapters"][2] = "ud2m_sr4_mnist_k22"
    cfg["w2_grids"]["mnist"]["prior"] = "pixel_ddpm"
    msg = error_of(cfg)
    assert "unknown checkpoint 'ud2m_sr4_mnist_k22' at w2_grids/mnist/adapters/2 (did you mean 'ud2m_sr4_mnist_k2'?)" in msg
    assert ("w2_grids/mnist/adapters/1: the adapter 'ud2m_sr4_mnist_k1' was distilled from pixel_ddpm_wide, not from "
            "the grid's prior 'pixel_ddpm'") in msg
    paper = sc.select({"profile": "paper"})
    assert sc.w2_cell_spec(paper, "mnist", 4)["priors"] == {"pixel": "pixel_ddpm_wide"}
    assert sc.w2_degrade_spec(paper, "mnist")["dataset"]["key"] == "mnist_test"
    paper["w2_grids"]["mnist"].pop("prior")
    assert "not from the grid's prior 'adm_imagenet256_uncond'" in error_of(paper)


def test_a_catalogue_overlay_is_laid_over_the_catalogue(tmp_path, monkeypatch):
    """IPBENCH_CHECKPOINTS: entries merged key by key over config/checkpoints.yaml (a mirror's URL, a tiny
    replica's architecture); a missing or malformed file is an error naming it."""
    from ipbench.store import catalog
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"adm_imagenet256_uncond": {"url": "http://mirror/adm.pt",
                                                                  "architecture": {"model_channels": 32}}}))
    monkeypatch.setenv("IPBENCH_CHECKPOINTS", str(overlay))
    entry = catalog.checkpoint("adm_imagenet256_uncond")
    assert entry["url"] == "http://mirror/adm.pt" and entry["architecture"] == {"model_channels": 32}
    assert entry["files"] == ["256x256_diffusion_uncond.pt"] and entry["dtype"] == "float16"     # the rest kept
    overlay.write_text("- a list\n")
    with pytest.raises(ValueError, match="expected a mapping of checkpoint names"):
        catalog.checkpoint("sd15")
    monkeypatch.setenv("IPBENCH_CHECKPOINTS", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="missing.yaml: no such file"):
        catalog.checkpoint("sd15")


def test_every_problem_is_reported_at_once(base):
    cfg = copy.deepcopy(base)
    cfg["tasks"]["px_sr4"]["sigmay"] = 0.01
    cfg["tables"]["deblur"]["note"] = "x"
    msg = error_of(cfg)
    assert "'sigmay' at tasks/px_sr4 (did you mean 'sigma_y'?)" in msg and "'note' at tables/deblur (did you mean 'notes'?)" in msg


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_keywords_read_from_the_source_match_the_signature(name):
    """``solve_keywords`` reads the source without importing it; here the imported functions' signatures say the same."""
    module = solver_module(name)

    def named(fn):
        return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD}

    expected = named(module.solve)
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(module.solve).parameters.values()):
        assert name == "latino_pro"           # the one solver that forwards its keywords
        expected |= named(module.solve_with_prompt) | named(module.calibrate)
    assert solve_keywords(name) == expected - set(STAGE_ARGUMENTS)


def test_the_schema_lists_the_operators_the_builder_has():
    from ipbench import physics
    schema = yaml.safe_load((sc.CONFIG_DIR / "schema.yaml").read_text())
    names = schema["properties"]["tasks"]["additionalProperties"]["properties"]["operator"]["properties"]["name"]["enum"]
    assert sorted(names) == sorted(physics.OPERATORS)


NO_TORCH = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "diffusers", "transformers", "peft"):
            raise ImportError(f"planning imported {name}")
sys.meta_path.insert(0, Refuse())
from snakemake.cli import main
sys.argv = ["snakemake", "-n", "-s", sys.argv[1], "--directory", sys.argv[2], "--cores", "1", *sys.argv[3:]]
main()
"""


@pytest.mark.slow                # Snakemake in a fresh process (about 20 s; the paper profile's `all`: 2,000+ jobs)
@pytest.mark.parametrize("args", [["results/table_deblur.md"], ["all", "--config", "profile=paper"]])
def test_planning_the_dag_imports_no_torch(tmp_path, args):
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(ROOT / "Snakefile"), str(tmp_path), *args],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "This was a dry-run" in out.stdout + out.stderr, out.stderr[-2000:]
