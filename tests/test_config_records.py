"""Configuration checks, seeding, run records and table rendering."""
import copy
import json
import re

import pytest
import torch

import ipbench.suite.config as sc
from ipbench.report.records import SCHEMA_ID, validate_record
from ipbench.report.tables import load_paper_numbers, published, render_table
from ipbench.suite.seeding import generators, seed_for


def compact(text: str) -> str:
    """A rendered table with the cells' padding removed (tabulate pads each column to its widest cell)."""
    return "\n".join(re.sub(r" {2,}", " ", line) if line.startswith("|") else line for line in text.splitlines())


@pytest.mark.parametrize("profile", ["embedded", "smoke", "paper"])
def test_shipped_configs_are_valid(profile):
    cfg = sc.load(sc.CONFIG_DIR / f"{profile}.yaml")
    assert cfg["profile"] == profile and "deblur" in cfg["tables"]


def test_bad_configs_name_the_problem():
    base = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    cfg = copy.deepcopy(base)
    cfg["tables"]["deblur"]["solvers"].append("dpss")
    with pytest.raises(ValueError, match=r"unknown solver 'dpss' at tables/deblur/solvers \(did you mean 'dps'\?\); valid: admm_tv, "):
        sc.check(cfg)
    cfg = copy.deepcopy(base)
    cfg["tasks"]["deblur_gaussian"]["operator"]["name"] = "blur"
    with pytest.raises(ValueError, match="unknown value 'blur' at tasks/deblur_gaussian/operator/name; valid: downsampling, "):
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
    records = [_record(t, s) for t, s in sc.table_pairs(cfg, "deblur")]
    assert ("deblur_gaussian", "latino") in sc.table_pairs(cfg, "deblur")
    assert ("px_deblur_gaussian", "latino") not in sc.table_pairs(cfg, "deblur")   # latent solver, pixel task
    numbers = load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")
    assert published(numbers, "latino_pro", "deblur_gaussian", "LATINO") == {"FID": 20.03, "PSNR": 26.25, "NFE": 8}
    text = compact(render_table(spec, records, numbers))
    assert "| ADMM-TV | 0 | 20.00 ± 1.00 |" in text
    assert "| LATINO (8 steps) | 0 (8) | 20.00 ± 1.00 (26.25) |" in text
    assert "| LATINO, true caption (oracle) | 0 | 20.00 ± 1.00 |" in text       # no published row: no number
    assert "| DDRM | 0 (20) | 20.00 ± 1.00 (36.73) |" in text
    assert "| CDDB (in results/table_ud2m.md) | – (1000) | – (37.02) |" in text
    assert "| UD2M (distilled) | 0 (9) | 20.00 ± 1.00 (35.57) |" in text
    cfg["solvers"]["ud2m"]["tasks"].remove("px_deblur_uniform")                 # as if no adapter were shipped
    records = [_record(t, s) for t, s in sc.table_pairs(cfg, "deblur")]
    text = compact(render_table(sc.table_spec(cfg, "deblur"), records, numbers))
    assert "| UD2M (not run on this task: see the notes) | – (9) | – (35.57) |" in text
    with pytest.raises(FileNotFoundError, match="no run record for solver 'admm_tv'"):
        render_table(spec, records[:1], numbers)


def test_wide_table_mirrors_the_latino_pro_slide():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    spec = sc.table_spec(cfg, "latino_pro")
    records = [_record(t, s, psnr=21.0) for t, s in sc.table_pairs(cfg, "latino_pro")]
    text = compact(render_table(spec, records, load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")))
    assert "| Method | NFE | Deblur FID ↓ | Deblur PSNR ↑ | SR x16 FID ↓ | SR x16 PSNR ↑ | images |" in text
    assert "| LATINO-PRO | 0 (68) | 3.00 (18.37) | 21.00 (26.82) | 3.00 (30.40) | 21.00 (21.52) | 2 |" in text
    assert "| P2L | 0 (2000) | 3.00 (85.80) |" in text
    assert "(not run here yet)" not in text                                      # every published row is run


def test_wide_table_marks_solvers_that_do_not_run_on_a_task():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    cfg["priors"]["bridge"] = {"px_sr4": "i2sb_px_sr4"}                        # one bridge only
    cfg["solvers"]["ud2m_ram"]["tasks"].remove("px_deblur_uniform")             # and no UD2M+RAM adapter there
    pairs = sc.table_pairs(cfg, "ud2m")
    assert ("px_jpeg10", "ddrm") not in pairs and ("px_sr4", "i2sb") in pairs and ("px_jpeg10", "i2sb") not in pairs
    spec = sc.table_spec(cfg, "ud2m")
    text = compact(render_table(spec, [_record(t, s, psnr=21.0) for t, s in pairs],
                        load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")))
    lines = text.splitlines()
    ddrm = next(line for line in lines if line.startswith("| DDRM |"))
    assert ddrm.count("n/a") == 3 and "21.00 (" in ddrm                        # JPEG: no SVD
    i2sb = next(line for line in lines if line.startswith("| I2SB |"))
    assert i2sb.count("n/a") == 9 and "| 21.00 (25.22) |" in i2sb                # SR x4 only
    rule = lines.index(next(line for line in lines if line.startswith("| *below")))
    assert lines[rule + 1].startswith("| DPS |") and "n/a: the solver does not run" in text
    ram = next(line for line in lines if line.startswith("| UD2M+RAM (distilled) |"))
    assert ram.startswith("| UD2M+RAM (distilled) | 0 (12) | 21.00 (35.97) |") and "| n/a (36.96) |" in ram
    assert ram.endswith("| n/a | n/a | n/a | 2 |")                             # JPEG: not run, nothing published
    cfg["tables"]["ud2m"]["solvers"].remove("ud2m_ram")                         # a published row nobody runs
    pairs = sc.table_pairs(cfg, "ud2m")
    text = compact(render_table(sc.table_spec(cfg, "ud2m"), [_record(t, s, psnr=21.0) for t, s in pairs],
                        load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")))
    assert "UD2M+RAM (not run here yet)" in text


def test_bench_divides_wall_time_by_bare_network_time():
    from ipbench.report.bench import render_bench
    rec = _record("sr16", "latino")
    rec["wall_time_s"] = 10.5
    rec["cost"] = {"autoencoder_calls_per_image": 16, "network_calls": {"denoiser": 8},
                   "bare_network_s": {"denoiser": 6.0, "decoder": 4.0}}
    rec["shards"] = [{"shard": [0, 1], "batch_size": 1, "wall_time_s": 5, "peak_memory_mb": 900},
                     {"shard": [1, 2], "batch_size": 1, "wall_time_s": 5.5, "peak_memory_mb": 1000}]
    rec["peak_memory_mb"] = 1000
    text = render_bench("t", [rec, _record("sr16", "pinv")])
    assert "| sr16 | latino | 2 | 2 x 1 | 5.25 | 0 | 16 | denoiser 8 | 10.0 | 10.5 | 1.050 | 1000 |" in text
    assert "– (no network)" in text
    del rec["cost"]["bare_network_s"]                      # bare timing off (the paper profile's default)
    assert "| 10.5 | not timed (bare_timing off) | 1000 |" in render_bench("t", [rec])


def test_bench_prints_the_published_cost_table_below_the_measured_one():
    from ipbench.report.bench import published_cost, render_bench
    from ipbench.report.tables import load_paper_numbers
    numbers = load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")
    lines = published_cost(numbers, "lvtino_runtime")
    assert "| LVTINO | 9 | 132 | 35.15 |" in lines and "| ADMM-TV | – | 13.6 | 22.01 |" in lines
    text = render_bench("t", [_record("sr16", "pinv")], lines)
    assert text.index("| sr16 | pinv |") < text.index("| VISION-XL | 8 | 176 | 15.64 |")
    with pytest.raises(ValueError, match="no published numbers"):
        published_cost(numbers, "no_such_table")


def test_bare_timing_is_off_in_the_paper_profile_and_a_flag_turns_it_on():
    assert sc.solve_spec(sc.select({"profile": "paper"}), "sr16", "latino")["bare_timing"] is False
    assert sc.solve_spec(sc.select({"profile": "paper", "bare_timing": True}), "sr16", "latino")["bare_timing"]
    assert sc.solve_spec(sc.select({"profile": "embedded"}), "sr16", "latino")["bare_timing"]


def test_solver_rows_can_share_a_module_and_use_fewer_images():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    oracle = sc.solve_spec(cfg, "sr16", "latino_true_caption")
    assert oracle["module"] == "latino" and oracle["hyper"]["prompts"] == "true_caption"
    assert sc.solve_spec(cfg, "sr16", "ldps")["solver_images"] < cfg["n_images"]
    assert sc.solve_spec(cfg, "sr16", "treg")["priors"] == {"latent": "latent_dm", "image_text": "similarity"}
    bad = copy.deepcopy(cfg)
    bad["solvers"]["latino_true_caption"]["module"] = "latinoo"
    with pytest.raises(ValueError, match="unknown solver 'latinoo'"):
        sc.check(bad)


def test_video_tasks_hold_their_own_number_of_clips_and_each_video_solver_its_priors():
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    assert sc.degrade_spec(cfg, "video_A")["n_images"] == 24 == sc.solve_spec(cfg, "video_A", "lvtino")["solver_images"]
    assert sc.degrade_spec(cfg, "deblur_gaussian")["n_images"] == cfg["n_images"] == 100
    assert sc.solve_spec(cfg, "video_A", "lvtino")["priors"] == {"video": "vcm", "video_frames": "lcm"}
    assert sc.solve_spec(cfg, "video_B", "vision_xl")["priors"] == {"video_latent": "latent_dm"}
    assert not sc.applies(cfg, "deblur_gaussian", "vision_xl") and not sc.applies(cfg, "video_C", "latino")
    paper = sc.select({"profile": "paper"})
    assert sc.solve_spec(paper, "problem_C", "lvtino")["priors"] == {"video": "causvid_bidirectional",
                                                                     "video_frames": "sdxl_dmd2_768x1280"}
    assert sc.fetched_checkpoints(paper, "vision_xl", "problem_A") == ["sdxl_base", "sdxl_base_unet_fp16",
                                                                       "sdxl_vae_fp16_fix"]


def test_tune_grid_parsing():
    from ipbench.suite.tune import parse_grid
    assert parse_grid("delta=0.1,1,3") == ("delta", [0.1, 1.0, 3.0])
    with pytest.raises(ValueError, match="name=v1,v2"):
        parse_grid("delta")


def test_tune_spans_the_product_of_several_grids(tmp_path):
    from ipbench.suite.tune import tune
    out = tune("embedded", "px_sr4", "admm_tv", ["lam=1e-4,1e-3", "n_iter=2,3"], n=2, out_dir=str(tmp_path),
               links={"rho": 50})
    assert [(r["lam"], r["n_iter"]) for r in out["grid"]] == [(1e-4, 2), (1e-4, 3), (1e-3, 2), (1e-3, 3)]
    best = max(out["grid"], key=lambda r: r["psnr"])
    assert out["chosen"] == {"lam": best["lam"], "n_iter": best["n_iter"], "rho": 50 * best["lam"]}
    assert "lam" not in out["fixed"] and "n_iter" not in out["fixed"]
    assert (tmp_path / "px_sr4_admm_tv.json").exists() and "prior" not in out
    with pytest.raises(ValueError, match="gridded twice"):
        tune("embedded", "px_sr4", "admm_tv", ["lam=1", "lam=2"], n=2, out_dir=str(tmp_path))


def test_tuning_records_the_prior_it_was_made_with(tmp_path):
    """A hyperparameter chosen with a network prior names that prior (checkpoint and sha256): a choice made
    with one pixel DDPM is not silently carried to another."""
    from ipbench.suite.config import checkpoint, select
    from ipbench.suite.tune import tune
    out = tune("embedded", "px_sr4", "ddrm", ["eta=0.85"], n=1, out_dir=str(tmp_path))
    name = select({"profile": "embedded"})["priors"]["pixel"]
    assert out["prior"] == {"checkpoint": name, "sha256": checkpoint(name)["sha256"]}


def test_committed_pixel_tunings_were_made_with_the_profiles_pixel_prior():
    """Every committed choice for a solver on the pixel DDPM (config/tuning/) names the DDPM the embedded
    profile runs, by checkpoint and sha256: changing the prior means tuning again."""
    from ipbench.suite.config import CONFIG_DIR, checkpoint, select, solve_spec
    from ipbench.suite.registry import prior_kind
    cfg = select({"profile": "embedded"})
    pixel = cfg["priors"]["pixel"]
    checked = 0
    for path in sorted((CONFIG_DIR / "tuning").glob("*.json")):
        record = json.loads(path.read_text())
        if prior_kind(solve_spec(cfg, record["task"], record["solver"])["module"]) != "pixel":
            continue
        assert record.get("prior") == {"checkpoint": pixel, "sha256": checkpoint(pixel)["sha256"]}, path.name
        checked += 1
    assert checked >= 8


def test_orderings_and_the_csv_come_from_the_records():
    """Each task's measured ordering beside the published one; a pair is flagged only when the measured
    difference contradicts the published order by more than one standard error of the difference."""
    import io as text_io
    import pandas as pd
    from ipbench.report.tables import render
    cfg = sc.load(sc.CONFIG_DIR / "embedded.yaml")
    spec = sc.table_spec(cfg, "deblur")
    measured = {"latino_pro": 20.0, "latino": 26.0, "p2l": 19.5}    # published 26.82 > 26.25 > ... (P2L lower)
    records = [_record(t, s, psnr=measured.get(s, 10.0)) for t, s in sc.table_pairs(cfg, "deblur")]
    numbers = load_paper_numbers(sc.ROOT / "report/paper_numbers.csv")
    text, frame = render(spec, records, numbers)
    line = next(x for x in text.splitlines() if x.startswith("**Ordering by PSNR ↑**") and "LATINO-PRO" in x)
    assert "measured LATINO (8 steps) > LATINO-PRO > " in line and "published LATINO-PRO > LATINO (8 steps) > " in line
    # per-image values psnr -/+ 1 on 2 images: standard error 1 each, sqrt(2) for a difference
    flagged = line.split("Contradicts the published order beyond one standard error: ")[1]
    assert flagged == "LATINO (8 steps) > LATINO-PRO by 6.00 ± 1.41; P2L > LDPS by 9.50 ± 1.41; P2L > TReg by 9.50 ± 1.41."
    records = [_record(t, s, psnr={"latino_pro": 20.0, "latino": 21.0}.get(s, 10.0)) for t, s in sc.table_pairs(cfg, "deblur")]
    line = next(x for x in render(spec, records, numbers)[0].splitlines() if x.startswith("**Ordering by PSNR ↑**"))
    assert "measured LATINO (8 steps) > LATINO-PRO" in line and "LATINO-PRO by" not in line   # 1.00 < 1.41: a tie
    row = frame[(frame.task == "deblur_gaussian") & (frame.solver == "latino")].iloc[0]
    assert (row.psnr, row.psnr_sem, row.psnr_published, row.nfe_published) == (26.0, 1.0, 26.25, 8)
    assert row.profile == "embedded" and row.git_revision == "abc" and row.status == "measured"
    csv = pd.read_csv(text_io.StringIO(frame.to_csv(index=False)))
    assert set(csv.status) >= {"measured", "in results/table_ud2m.md"}     # CDDB's published row, run elsewhere


def test_w2_trend_reads_the_grid():
    from ipbench.suite.w2grid import trend
    assert trend([3.0, 2.5, 2.0], [1, 2, 4]).startswith("falls at every step from N = 1 to 4 (3.00 -> 2.00)")
    assert "rises (or stays) at N = 2 -> 4" in trend([3.0, 2.5, 2.6], [1, 2, 4])
