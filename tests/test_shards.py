"""Shards and mini-batches: a solve split into shard jobs, each through the networks in mini-batches, gives
the images of one unsplit solve, and its peak memory follows the mini-batch, not the number of images."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ipbench import physics
from ipbench.suite import config as sc, io, stages

ROOT = Path(__file__).resolve().parent.parent
TASK = {"image_size": 64, "sigma_y": 0.01, "operator": {"name": "gaussian_blur", "variance": 3.0, "kernel_size": 5}}

# a tiny random-weight replica of a pixel prior (3 x 64 x 64 images), built the same way in this process and in
# the subprocesses that measure memory
TINY = """
import torch
import ipbench.suite.priors as sp
from ipbench.priors.pixel_ddpm import PixelDiffusionPrior, build_unet

def tiny_prior(kind, priors, precision="float32"):
    torch.manual_seed(0)
    return sp.frozen(PixelDiffusionPrior(build_unet(sample_size=64, in_channels=3, out_channels=3,
                                                    block_out_channels=(16, 32, 32), norm_num_groups=8,
                                                    attention_head_dim=8)))
"""


def _degraded(path: Path, n: int) -> str:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 64, 64, generator=g)
    op = physics.build_operator(TASK["operator"], x.shape[1:], TASK["sigma_y"])
    io.write_tensors(str(path), {"x": x, "y": op.measure(x.double(), g).float(), "labels": torch.full((n,), -1),
                                 "index": torch.arange(n)})
    return str(path)


def _spec(n: int, batch: int | None, shard=None, solver="dps", hyper=None) -> dict:
    return {"profile": "t", "task": "deblur", "task_spec": TASK, "solver": solver, "module": solver,
            "hyper": hyper or {"steps": 2}, "priors": {"pixel": "tiny"}, "device": "cpu", "bare_timing_every": 0,
            "solver_images": n, "batch_size": batch, **({"shard": shard} if shard else {})}


def test_shards_tile_a_solvers_images_and_a_row_overrides_the_profile():
    cfg = sc.select({"profile": "embedded", "sharding": {"shard_size": 30, "batch_size": 8}})
    assert sc.shards(cfg, "px_sr4", "ddrm") == [(0, 30), (30, 60), (60, 90), (90, 100)]
    spec = sc.shard_spec(cfg, "px_sr4", "ddrm", 3)
    assert spec["shard"] == [90, 100] and spec["batch_size"] == 8 and spec["shard_size"] == 30
    cfg["solvers"]["ddrm"].update(shard_size=50, batch_size=100)       # a mini-batch no larger than its shard
    assert sc.shards(cfg, "px_sr4", "ddrm") == [(0, 50), (50, 100)]
    assert sc.solve_spec(cfg, "px_sr4", "ddrm")["batch_size"] == 50
    with pytest.raises(ValueError, match=r"has 2 shard\(s\) \(0..1\), not shard 2"):
        sc.shard_spec(cfg, "px_sr4", "ddrm", 2)
    plain = sc.select({"profile": "embedded"})                          # unset: one shard, one mini-batch
    assert sc.shards(plain, "px_sr4", "ddrm") == [(0, 100)]
    assert sc.solve_spec(plain, "px_sr4", "ddrm")["batch_size"] == 100
    with pytest.raises(ValueError, match="unknown key 'shard_sise' at sharding"):
        sc.select({"profile": "embedded", "sharding": {"shard_sise": 4}})


def test_shards_in_mini_batches_give_the_images_of_one_solve(tmp_path, monkeypatch):
    """DPS (its own noise per image, a backward pass per step) on 6 images: one job as one batch, against three
    shards of 2 images in mini-batches of 1 gathered by the scoring job's ``gather``; the costs add up."""
    tiny = {}
    exec(TINY, tiny)
    monkeypatch.setattr("ipbench.suite.priors.load_prior", tiny["tiny_prior"])     # undone after the test
    degraded = _degraded(tmp_path / "y.safetensors", 6)
    stages.solve({**_spec(6, None), "bare_timing": False}, degraded, str(tmp_path / "one.safetensors"),
                 str(tmp_path / "one.json"))
    parts = []
    for k, shard in enumerate([(4, 6), (0, 2), (2, 4)]):              # any order: gather sorts by image range
        parts.append((str(tmp_path / f"s{k}.safetensors"), str(tmp_path / f"s{k}.json")))
        stages.solve(_spec(6, 1, list(shard)), degraded, *parts[-1])
    est, run = stages.gather(*map(list, zip(*parts)))
    one, one_meta = io.read_tensors(str(tmp_path / "one.safetensors")), io.read_json(str(tmp_path / "one.json"))
    assert torch.equal(est["index"], torch.arange(6))
    assert torch.allclose(est["x_hat"], one["x_hat"], atol=1e-5)
    assert run["nfe_total"] == one_meta["nfe_total"] == 6 * 2 and run["nfe_per_image"] == 2
    assert run["seeds"] == one_meta["seeds"]
    assert run["network_calls"] == {"denoiser": 6 * 2} and one_meta["network_calls"] == {"denoiser": 2}
    assert [s["shard"] for s in run["shards"]] == [[0, 2], [2, 4], [4, 6]]
    assert "bare_network_s" in run and "bare_network_s" not in one_meta       # bare timing off: not timed at all
    with pytest.raises(ValueError, match=r"do not tile the images: \[0, 2\] then \[4, 6\]"):
        stages.gather([parts[0][0], parts[1][0]], [parts[0][1], parts[1][1]])


def _peak_mb(tmp_path: Path, n: int, batch: int | None) -> float:
    degraded = _degraded(tmp_path / f"y{n}.safetensors", n)
    meta = tmp_path / f"m{n}_{batch}.json"
    script = TINY + (f"sp.load_prior = tiny_prior\nfrom ipbench.suite import stages\n"
                     f"stages.solve({_spec(n, batch, hyper={'steps': 2})!r}, {degraded!r}, "
                     f"{str(tmp_path / 'o.safetensors')!r}, {str(meta)!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return json.loads(meta.read_text())["peak_memory_mb"]


@pytest.mark.slow            # three fresh processes (about a minute)
def test_peak_memory_follows_the_mini_batch_not_the_number_of_images(tmp_path):
    """DPS keeps each step's backward graph: peak resident memory of a solve of 4 and of 64 images in
    mini-batches of 4 agree within 10%; 64 images as one batch (what every solve did before shards) need
    far more, so the measurement can tell the two apart."""
    four, many = _peak_mb(tmp_path, 4, 4), _peak_mb(tmp_path, 64, 4)
    unbatched = _peak_mb(tmp_path, 64, None)
    print(f"peak memory: 4 images {four:.0f} MB, 64 images in mini-batches of 4 {many:.0f} MB, "
          f"64 images as one batch {unbatched:.0f} MB")
    assert abs(many - four) <= 0.10 * four
    assert unbatched > 1.3 * four


@pytest.mark.slow            # fresh processes (about 10 s)
def test_peak_memory_is_the_jobs_own_not_its_parents():
    """A job spawned by a large process (a test runner, a workflow manager) reports its own peak: on Linux
    ``ru_maxrss`` carries the parent's peak across ``exec``, which made every small solve report the runner's
    size."""
    child = "from ipbench.metrics.accounting import peak_memory_mb; print(peak_memory_mb())"
    parent = ("import subprocess, sys\nbig = bytearray(1536 * 2**20)\nbig[::4096] = b'1' * len(big[::4096])\n"
              f"print(subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True, "
              "check=True).stdout)")
    peak = float(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                                check=True).stdout)
    assert 10 < peak < 1000, peak
