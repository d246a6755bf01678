"""Configuration checks, seeding, run records and table rendering."""
import copy

import pytest
import torch

import suite.config as sc
from report.records import SCHEMA_ID, validate_record
from report.tables import load_paper_numbers, published, render_table
from suite.seeding import generators, seed_for


@pytest.mark.parametrize("profile", ["embedded", "smoke", "paper"])
def test_shipped_configs_are_valid(profile):
    cfg = sc.load(sc.CONFIG_DIR / f"{profile}.yaml")
    assert cfg["profile"] == profile and "deblur" in cfg["tables"]


def test_bad_configs_name_the_problem():
    base = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    cfg = copy.deepcopy(base)
    cfg["tables"]["deblur"]["solvers"].append("dps")
    with pytest.raises(ValueError, match="table 'deblur' lists unknown solver 'dps'; configured solvers: pinv, admm_tv"):
        sc.check(cfg)
    cfg = copy.deepcopy(base)
    cfg["tasks"]["deblur_gaussian"]["operator"]["name"] = "blur"
    with pytest.raises(ValueError, match="valid operators"):
        sc.check(cfg)
    cfg = copy.deepcopy(base)
    cfg["n_images"] = 0
    with pytest.raises(ValueError, match="invalid config at n_images"):
        sc.check(cfg)
    with pytest.raises(ValueError, match="unknown profile 'nope'; valid profiles: embedded, paper, smoke"):
        sc.select({"profile": "nope"})
    with pytest.raises(ValueError, match="unknown task 'deblur'; valid tasks"):
        sc.solve_spec(base, "deblur", "pinv")


def test_smoke_extends_embedded():
    smoke = sc.select({"profile": "smoke"})
    assert smoke["n_images"] == 8 and smoke["solvers"]["admm_tv"]["hyper"]["lam"] == 1e-3
    assert smoke["solvers"]["admm_tv"]["hyper"]["n_iter"] == 20


def test_seeds_are_per_image_and_stable():
    assert seed_for("embedded", "sr16", "pinv", 3) == seed_for("embedded", "sr16", "pinv", 3)
    assert seed_for("embedded", "sr16", "pinv", 3) != seed_for("smoke", "sr16", "pinv", 3)
    a = torch.randn(2, generator=generators("p", "t", "s", [5])[0])
    b = torch.randn(2, generator=generators("p", "t", "s", [4, 5])[1])
    assert torch.equal(a, b)


def _record(task, solver, psnr=20.0):
    return {"schema": SCHEMA_ID, "profile": "embedded", "task": task, "solver": solver, "config": {},
            "git_revision": "abc", "created_utc": "2026-01-01T00:00:00+00:00", "n_images": 2,
            "seeds": {"measure": [1, 2], "solver": [3, 4]}, "nfe": {"per_image": 0, "total": 0},
            "wall_time_s": 1.0, "peak_memory_mb": 10.0, "feature_space": "digits",
            "per_image": {"index": [0, 1], "psnr": [psnr - 1, psnr + 1], "ssim": [0.5, 0.7], "lpips": [0.1, 0.2]},
            "metrics": {"psnr": psnr, "ssim": 0.6, "lpips": 0.15, "fid": 3.0, "kid": 0.001}}


def test_record_validation():
    validate_record(_record("t", "s"))
    bad = _record("t", "s")
    del bad["nfe"]
    with pytest.raises(ValueError, match="'nfe' is a required property"):
        validate_record(bad)
    bad = _record("t", "s")
    bad["per_image"]["psnr"] = [1.0]
    with pytest.raises(ValueError, match="per_image/psnr has 1 values for 2 images"):
        validate_record(bad)


def test_table_puts_published_beside_measured():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    spec = sc.table_spec(cfg, "deblur")
    records = [_record(t["key"], s["key"]) for t in spec["tasks"] for s in spec["solvers"]]
    numbers = load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")
    assert published(numbers, "latino_pro", "deblur_gaussian", "LATINO") == {"FID": 20.03, "PSNR": 26.25, "NFE": 8}
    text = render_table(spec, records, numbers)
    assert "| ADMM-TV | 0 | 20.00 ± 1.00 |" in text
    assert "| LATINO (not run here yet) | – (8) | – (26.25) |" in text
    assert "| DDRM (not run here yet) | – (20) | – (36.73) |" in text
    with pytest.raises(FileNotFoundError, match="no run record for solver 'admm_tv'"):
        render_table(spec, records[:1], numbers)
