"""The side-by-side lever measurement (suite/speed.py): a lever that changes nothing gives the same images (same
seeds), bf16 moves DDRM's PSNR by a little and says so, and the report lists each pair and network."""
import json

import pytest

import ipbench.suite.config as sc
from ipbench.suite import speed, stages


@pytest.fixture(scope="module")
def ddrm_case(tmp_path_factory):
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    cfg["speed"]["levers"]["nothing"] = {"before": {}, "after": {"precision": "float32"}}
    cfg["speed"]["n_images"] = 2
    tmp = tmp_path_factory.mktemp("speed")
    degraded = str(tmp / "y.safetensors")
    stages.degrade({**sc.degrade_spec(cfg, "px_deblur_gaussian"), "n_images": 2}, degraded)
    return cfg, degraded, tmp


def test_a_lever_that_changes_nothing_changes_no_image(ddrm_case):
    cfg, degraded, tmp = ddrm_case
    r = speed.speed_pair(sc.speed_spec(cfg, "nothing", "px_deblur_gaussian", "ddrm"), degraded, str(tmp / "n.json"))
    assert r["n_images"] == 2 and r["before"]["psnr"] == r["after"]["psnr"] and r["psnr_diff_max_abs"] == 0
    assert r["before"]["nfe_per_image"] == r["after"]["nfe_per_image"] == 20
    assert json.loads((tmp / "n.json").read_text())["lever"] == "nothing"


def test_bf16_moves_ddrm_by_little_and_the_report_shows_it(ddrm_case):
    cfg, degraded, tmp = ddrm_case
    r = speed.speed_pair(sc.speed_spec(cfg, "bf16", "px_deblur_gaussian", "ddrm"), degraded, str(tmp / "b.json"))
    assert 0 < r["psnr_diff_max_abs"] < 0.5 and r["after"]["overrides"] == {"precision": "bf16"}
    nets = {"machine": r["machine"], "reps": 1, "rows": [{"network": "decoder (autoencoder)", "mode": "forward",
                                                          "batch": 20, "threads": 1, "float32_ms": 8.0,
                                                          "bf16_ms": 4.0}]}
    md = speed.render("Speed", [r], nets)
    assert "| bf16 | px_deblur_gaussian | ddrm | 2 | 20 |" in md
    assert "| decoder (autoencoder) | forward | 20 | 1 | 8.00 | 4.00 | 2.00 |" in md


def test_unknown_levers_and_pairs_are_refused(ddrm_case):
    cfg = ddrm_case[0]
    with pytest.raises(ValueError, match="unknown speed lever 'fp8'; valid: bf16, nothing"):
        sc.speed_spec(cfg, "fp8", "px_deblur_gaussian", "ddrm")
    bad = {**cfg, "speed": {**cfg["speed"], "runs": {"px_deblur_gaussian": ["latino"]}}}
    with pytest.raises(ValueError, match="speed/runs/px_deblur_gaussian: solver 'latino' does not run on task"):
        sc.check(bad)


@pytest.mark.slow
def test_layouts_time_the_same_function_and_put_the_modules_back(monkeypatch, tmp_path):
    """channels_last and torch.compile are timed on the call as the solvers make it: the compiled output equals the
    eager one, and afterwards the owner holds its own module again, in the default layout."""
    import torch

    class Owner:
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(4, 1, 1))
    owner, original = Owner(), Owner.net
    monkeypatch.setattr(speed, "networks", lambda priors: {"tiny": (lambda x: owner.net(x), (1, 8, 8),
                                                                    [(owner, "net")])})
    r = speed.speed_layouts({}, str(tmp_path / "l.json"), batch=2, reps=1)
    assert [row["mode"] for row in r["rows"]] == ["forward", "forward + backward"]
    assert all(row["compiled_max_abs_diff"] < 1e-5 and row["compile_s"] > 0 for row in r["rows"])
    assert owner.net is original and original[0].weight.is_contiguous()
    md = speed.render("Speed", [], None, r | {"machine": speed.machine()})
    assert "## Memory layout and compilation" in md and md.count("| tiny |") == 2
