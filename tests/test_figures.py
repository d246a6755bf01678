"""The figures render from tensors (no network): a restoration grid and the prompt-calibration figure."""
import torch
from PIL import Image

from ipbench.report.figures import measurement_image, prompt_calibration, restoration_grid


def test_restoration_grid_and_calibration_figure(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 16, 16, generator=g)
    y = x[..., ::4, ::4]
    assert measurement_image(y, x.shape).shape == x.shape
    restoration_grid("t", x, y, {"A": x, "B": 1 - x}, str(tmp_path / "grid.png"), n=3)
    w, h = Image.open(tmp_path / "grid.png").size
    assert w > h                                          # 4 columns, 3 rows
    row = {"truth": x[0], "measurement": x[0], "latino": x[0], "latino_pro": x[0],
           "samples_initial": x[:2], "samples_calibrated": x[1:]}
    prompt_calibration([row, row], str(tmp_path / "cal.png"), "t")
    assert (tmp_path / "cal.png").stat().st_size > 1000
