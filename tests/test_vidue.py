"""VIDUE, LVTINO's Problem C warm start in the paper profile (priors/vidue.py): its module tree is the released
checkpoint's, its outputs do not depend on the batch (the released code normalises each window alone), the
windows and frames are LVTINO's, and the loader reads a state dict strictly."""
from pathlib import Path

import pytest
import torch

from ipbench import physics
from ipbench.priors import vidue

from standin_hub import TINY_VIDUE as TINY
EXPECTED = Path(__file__).parent / "expected" / "vidue_state_dict.txt"


def _tiny(seed=0):
    torch.manual_seed(seed)
    net = vidue.VIDUE(**TINY)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_the_module_tree_is_the_released_checkpoints():
    """Every key, shape and dtype of the released model's state dict (listed from its definition), and no other."""
    with torch.device("meta"):
        net = vidue.VIDUE()
    ours = sorted(f"{k} {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}" for k, v in net.state_dict().items())
    released = [line for line in EXPECTED.read_text().splitlines() if not line.startswith("#")]
    assert ours == released and len(ours) == 1124


def test_a_batch_of_windows_gives_what_one_window_per_batch_gives():
    net = _tiny()
    frames = torch.rand(3, 4, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = net(frames)
        alone = torch.cat([net(frames[i:i + 1]) for i in range(3)])
    assert together.shape == (3, 8, 3, 32, 40)
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(frames[..., :36])


class _Counter(torch.nn.Module):
    """A stand-in network: output j of a window whose second frame reads k is the constant (8 k + j) / 255."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        k = (x[:, 1].mean() * 255).round()
        codes = (8 * k + torch.arange(8)) / 255
        return codes.view(1, 8, 1, 1, 1).expand(1, 8, 3, *x.shape[-2:])


def test_lvtino_keeps_frame_8k_plus_j_from_window_k_and_repeats_the_last():
    """11 measured frames (81 at x8, padded to 88): windows (1, 0, 1, 2), (0, 1, 2, 3), ..., (8, 9, 10, 9); frame
    t of the clip is output t mod 8 of window t // 8 for t < 80, frame 80 repeats frame 79."""
    assert vidue.windows(11)[0] == [1, 0, 1, 2] and vidue.windows(11)[-1] == [8, 9, 10, 9]
    assert len(vidue.windows(11)) == 10
    y = (torch.arange(11.0) / 255).view(11, 1, 1, 1).expand(11, 1, 12, 20)      # frame k reads k
    calls = []
    out = vidue.interpolate_clip(_Counter(), y, 81, (96, 160), jpeg_quality=None,
                                 record=lambda fn, x: calls.append(tuple(x.shape)))
    assert out.shape == (81, 1, 96, 160) and len(calls) == 10 and calls[0] == (1, 4, 3, 32, 32)   # padded to 32
    codes = (out.mean((1, 2, 3)) * 255).round().long().tolist()
    assert codes == list(range(80)) + [79]
    jpeg = vidue.interpolate_clip(_Counter(), y, 81, (96, 160))               # through 8-bit JPEG files
    assert (jpeg - out).abs().max() <= 2 / 255


def test_the_loader_reads_a_state_dict_strictly(tmp_path, monkeypatch):
    from ipbench.priors import paper
    net = _tiny()
    torch.save(net.state_dict(), tmp_path / "model_best_gopro.pt")
    loaded = paper.load_vidue(root=tmp_path, architecture=TINY)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
    with pytest.raises(ValueError, match="not a VIDUE state dict"):
        paper.load_vidue(root=tmp_path, architecture={**TINY, "feats": 24})


def test_lvtino_problem_c_starts_from_the_interpolation(monkeypatch):
    """With an interpolator, Problem C's x^0 is VIDUE's clip (one call per window of each clip), not ADMM-TV's."""
    from ipbench.methods import lvtino
    from ipbench.priors.calls import CallLog
    op = physics.build_operator({"name": "video_downsampling", "t": 8, "s": 8, "spatial_filter": "bicubic"},
                                (25, 1, 64, 64), 0.001)
    y = op.measure(torch.rand(2, 25, 1, 64, 64), [torch.Generator().manual_seed(i) for i in range(2)])
    log = CallLog()
    x0 = lvtino.warm_start(y, op, "C", interpolator=_tiny(), record=lambda fn, x: log.record("interpolator", fn, x))
    assert x0.shape == (2, 25, 1, 64, 64) and 0 <= x0.min() and x0.max() <= 1
    assert log.summary() == {"interpolator": 2 * 3}                  # 4 measured frames: 3 windows per clip
    assert not torch.allclose(x0, lvtino.warm_start(y, op, "C"))


def test_the_vidue_row_is_the_interpolation_alone(monkeypatch):
    """The paper profile's VIDUE row (baselines/vidue.py): LVTINO's Problem C warm start as an estimate; clips only."""
    from ipbench.baselines import vidue as row
    from ipbench.methods import lvtino
    from ipbench.suite.registry import solver_family
    net = _tiny()
    monkeypatch.setattr("ipbench.priors.paper.vidue_network", lambda name: net)
    op = physics.build_operator({"name": "video_downsampling", "t": 8, "s": 8, "spatial_filter": "bicubic"},
                                (25, 1, 64, 64), 0.001)
    y = op.measure(torch.rand(2, 25, 1, 64, 64), [torch.Generator().manual_seed(i) for i in range(2)])
    out = row.solve(y, op)
    assert torch.equal(out, lvtino.warm_start(y, op, "C", interpolator=net)) and solver_family("vidue") == "video"
    with pytest.raises(ValueError, match="interpolates clips"):
        row.solve(torch.rand(2, 1, 8, 8), op)
