"""``python -m ipbench restore``: a solver on an image of one's own, and clear errors for images that do not fit."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ipbench import physics
from ipbench.datasets import digits
from ipbench.metrics import psnr
from ipbench.suite.restore import read_image, restore, write_image


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "digit.png"
    x, _ = digits("test", 32, 1)
    write_image(path, x[0])
    return path, read_image(path, (1, 32, 32), "a digit")


def test_a_clean_image_is_degraded_restored_and_scored(digit, tmp_path):
    path, x = digit
    out = restore("px_deblur_gaussian", "pinv", str(path), str(tmp_path / "x.png"), clean=True)
    restored = read_image(tmp_path / "x.png", (1, 32, 32), "the output")
    assert out["measurement"] == out["restoration"] == "32 x 32 grayscale" and out["nfe_per_sample"] == 0
    assert abs(float(psnr(restored, x)[0]) - out["psnr_mean_db"]) < 0.2          # 8-bit PNG rounding only
    assert (tmp_path / "x_measurement.png").exists()


def test_a_measurement_is_restored_at_the_priors_size(digit, tmp_path):
    path, x = digit
    op = physics.build_operator({"name": "downsampling", "factor": 4}, (1, 32, 32), 0.01)
    write_image(tmp_path / "y.png", op.measure(x.double(), torch.Generator().manual_seed(0)).float()[0])
    out = restore("px_sr4", "pinv", str(tmp_path / "y.png"), str(tmp_path / "x.png"))
    assert out["measurement"] == "8 x 8 grayscale" and Image.open(tmp_path / "x.png").size == (32, 32)


def test_posterior_samples_their_mean_and_std(digit, tmp_path):
    path, _ = digit
    out = restore("px_sr4", "ddrm", str(path), str(tmp_path / "x.png"), samples=3, clean=True)
    assert out["samples"] == 3 and out["nfe_per_sample"] == 20 and out["std_max"] > 0
    assert Image.open(tmp_path / "x_std.png").size == (32, 32)
    assert Image.open(tmp_path / "x_samples.png").size == (3 * 32, 32)


def test_images_that_do_not_fit_say_what_would(digit, tmp_path):
    path, _ = digit
    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype("uint8")).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"rgb.png is a 20 x 30 RGB image, but the measurement of task 'px_sr4' "
                                         r"\(which restores 32 x 32 grayscale images.*is a 8 x 8 grayscale image.*resize\(\(8, 8\)\)"):
        restore("px_sr4", "pinv", str(tmp_path / "rgb.png"), str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match=r"a clean image of task 'px_sr4' \(the prior's size\) is a 32 x 32 grayscale"):
        restore("px_sr4", "pinv", str(tmp_path / "rgb.png"), str(tmp_path / "x.png"), clean=True)
    with pytest.raises(ValueError, match="solver 'latino' does not run on task 'px_sr4'.*solvers for 'px_sr4': pinv"):
        restore("px_sr4", "latino", str(path), str(tmp_path / "x.png"))
    with pytest.raises(FileNotFoundError, match="no image at"):
        restore("px_sr4", "pinv", str(tmp_path / "none.png"), str(tmp_path / "x.png"))


@pytest.mark.slow            # the command line in a fresh process (about 10 s)
def test_the_command_line(digit, tmp_path):
    path, _ = digit
    out = subprocess.run([sys.executable, "-m", "ipbench", "restore", "--task", "px_deblur_gaussian", "--solver",
                          "admm_tv", "--image", str(path), "--out", str(tmp_path / "x.png"), "--clean"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["psnr_mean_db"] > 20
    bad = subprocess.run([sys.executable, "-m", "ipbench", "restore", "--task", "px_sr44", "--solver", "pinv",
                          "--image", str(path), "--out", str(tmp_path / "x.png")], capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown task 'px_sr44'; valid tasks:" in bad.stderr
