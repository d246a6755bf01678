"""Figures of the solver runs: restoration grids and LATINO-PRO's prompt calibration.

``restoration_grid``: rows = test images, columns = truth, measurement (shown at the image size:
A^T y for down-sampling, y otherwise) and each solver's estimate.
``prompt_calibration``: the talk's figure; prior samples (4-step consistency sampling) drawn with
the initial prompt and with the prompt LATINO-PRO calibrated on a measurement, beside that
measurement, the truth and the two restorations.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _show(ax, img: torch.Tensor, title: str | None = None):
    ax.imshow(img.squeeze(0).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def measurement_image(y: torch.Tensor, x_shape, op=None) -> torch.Tensor:
    """The measurement as an image of the truth's size (nearest up-sampling of a smaller y)."""
    if y.shape[-2:] == tuple(x_shape[-2:]):
        return y
    return torch.nn.functional.interpolate(y, size=tuple(x_shape[-2:]), mode="nearest")


def image_grid(rows: list[list[torch.Tensor]], cols: list[str], title: str, out: str) -> None:
    """Grey images in a grid, column titles on the first row, saved to ``out``."""
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.1 * len(cols), 1.15 * len(rows) + 0.5), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            _show(axes[i, j], img, cols[j] if i == 0 else None)
    fig.suptitle(textwrap.fill(title, width=int(18 * len(cols))), fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)


def restoration_grid(title: str, x: torch.Tensor, y: torch.Tensor, estimates: dict[str, torch.Tensor],
                     out: str, n: int = 6) -> None:
    n = min(n, len(x))
    y_img = measurement_image(y[:n], x.shape)
    rows = [[x[i], y_img[i]] + [e[i] for e in estimates.values()] for i in range(n)]
    image_grid(rows, ["truth", "measurement"] + list(estimates), title, out)


def prompt_calibration(rows: list[dict], out: str, title: str) -> None:
    """``rows``: dicts with truth, measurement, latino, latino_pro (images) and samples_initial /
    samples_calibrated (k images each)."""
    k = rows[0]["samples_initial"].shape[0]
    cols = ["truth", "measurement", "LATINO", "LATINO-PRO"] + [f"prior, initial c ({i + 1})" for i in range(k)] \
        + [f"prior, calibrated c ({i + 1})" for i in range(k)]
    grid = [[r["truth"], r["measurement"], r["latino"], r["latino_pro"], *r["samples_initial"], *r["samples_calibrated"]]
            for r in rows]
    image_grid(grid, cols, title, out)


def posterior_grid(x: torch.Tensor, y_img: torch.Tensor, samples: torch.Tensor, out: str, title: str) -> None:
    """The talk's MNIST figure: per row a test image, its measurement, ``samples`` (n, S, C, H, W) drawn for
    it, their mean and their standard deviation (scaled by the largest std of the figure, stated in the
    column title)."""
    mean, std = samples.mean(1), samples.std(1)
    scale = float(std.max().clamp_min(1e-8))
    S = samples.shape[1]
    rows = [[x[i], y_img[i], *samples[i], mean[i], std[i] / scale] for i in range(len(x))]
    image_grid(rows, ["truth", "measurement"] + [f"sample {j + 1}" for j in range(S)]
               + ["mean", f"std (max {scale:.2f})"], title, out)


def measurement_clip(y: torch.Tensor, x_shape, op=None) -> torch.Tensor:
    """A measured clip (T', C, h, w) shown at the truth's (T, C, H, W): nearest in space, and in time each frame
    shows the measured frame that weighs it most in the operator's temporal matrix (the pooled frame of its
    block; without ``op``, proportional)."""
    T = x_shape[0]
    if op is not None and -4 in getattr(op, "matrices", {}):
        frames = op.matrices[-4].argmax(0)
    else:
        frames = (torch.arange(T) * y.shape[0] // T).clamp_max(y.shape[0] - 1)
    return measurement_image(y[frames], x_shape)


def video_strips(title: str, x: torch.Tensor, y: torch.Tensor, estimates: dict[str, torch.Tensor], out: str,
                 every: int = 3, op=None) -> None:
    """One clip: a row of frames (every ``every``-th) for the truth, the measurement (``measurement_clip``) and
    each solver, and a last column with the x-t slice through the row the digit's ink crosses most (time down,
    x across)."""
    y_clip = measurement_clip(y, x.shape, op)
    clips = {"truth": x, "measurement": y_clip, **estimates}
    ink = x[:, 0].sum(0)                                     # the row the digit crosses most
    row = int(ink.sum(1).argmax())
    grid, names = [], []
    for name, clip in clips.items():
        grid.append([f for f in clip[::every]] + [clip[:, :, row, :].transpose(0, 1)])
        names.append(name)
    cols = [f"t = {t}" for t in range(0, x.shape[0], every)] + [f"x-t slice, row {row}"]
    fig, axes = plt.subplots(len(grid), len(cols), figsize=(1.0 * len(cols), 1.05 * len(grid) + 0.5), squeeze=False)
    for i, (name, frames) in enumerate(zip(names, grid)):
        for j, img in enumerate(frames):
            _show(axes[i, j], img, cols[j] if i == 0 else None)
        axes[i, 0].set_ylabel(name, fontsize=7)
    fig.suptitle(textwrap.fill(title, width=int(18 * len(cols))), fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)


def side_by_side(clips: list[torch.Tensor], gap: int = 2) -> torch.Tensor:
    """(T, C, H, W) clips of one size joined along the width, with ``gap`` white columns between them."""
    T, C, H, _ = clips[0].shape
    bar = torch.ones(T, C, H, gap, dtype=clips[0].dtype)
    parts = [p for clip in clips for p in (clip, bar)][:-1]
    return torch.cat(parts, dim=-1)


def write_gif(clip: torch.Tensor, out: str, fps: int = 8) -> None:
    """A (T, C, H, W) clip in [0, 1], C = 1 or 3, as an animated GIF (imageio)."""
    import imageio.v3 as iio
    frames = (clip.clamp(0, 1) * 255).round().to(torch.uint8)
    frames = frames.expand(-1, 3, -1, -1).permute(0, 2, 3, 1)      # RGB (readers mishandle grey GIF frames)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, frames.numpy(), extension=".gif", duration=1000 / fps, loop=0)
