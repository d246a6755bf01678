"""I2SB's bridge and CDDB's data-consistency step, against an exact bridge network."""
import types

import pytest
import torch

from ipbench import physics
from ipbench.baselines import cddb, i2sb
from ipbench.priors.bridge import BridgePrior, bridge_betas, bridge_sample, bridge_steps, degraded_image


class OracleNet(torch.nn.Module):
    """The exact bridge network for one clean image x0: eps(x_n, n) = (x_n - x0) / sigma_n."""

    def __init__(self, x0, sigma2):
        super().__init__()
        self.x0, self.sigma2 = x0, sigma2

    def forward(self, x, n):
        return types.SimpleNamespace(sample=(x - self.x0) / self.sigma2[n].sqrt().view(-1, 1, 1, 1))


def test_schedule_is_symmetric_and_the_marginals_meet_the_ends():
    beta = bridge_betas(1000, 0.3)
    assert torch.allclose(beta, beta.flip(0))
    prior = BridgePrior(torch.nn.Identity(), beta_max=0.3)
    assert torch.allclose(prior.sigma2[-1], prior.sigmabar2[0]) and (prior.sigma2.diff() > 0).all()
    x0, x1, z = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    near_clean = prior.q_sample(x0, x1, torch.tensor([0, 0]), z)
    near_degraded = prior.q_sample(x0, x1, torch.tensor([999, 999]), z)
    assert near_clean.abs().max() < 0.05 and (near_degraded - 1).abs().max() < 0.05
    assert bridge_steps(1000, 999) == list(range(999, -1, -1)) and bridge_steps(1000, 4) == [999, 749, 500, 250, 0]


@pytest.mark.parametrize("ot_ode", [True, False])
def test_an_exact_bridge_network_carries_x1_to_x0(ot_ode):
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    x1 = x0 + 0.5 * torch.randn(x0.shape, generator=g)
    prior = BridgePrior(torch.nn.Identity(), ot_ode=ot_ode)
    prior.net = OracleNet(x0, prior.sigma2)
    out = bridge_sample(prior, x1, nfe=20, noise=lambda: torch.randn(x0.shape, generator=g))
    assert prior.nfe == 3 * 20
    assert (out - x0).abs().max() < 1e-2          # the last step stops at sigma_0^2 = beta_0, not at 0


def test_cddb_step_pulls_a_wrong_bridge_towards_the_measurement():
    g = torch.Generator().manual_seed(1)
    op = physics.build_operator({"name": "downsampling", "factor": 2}, (1, 8, 8), 0.0)
    x = torch.rand(2, 1, 8, 8, generator=g)
    y = op.measure(x)
    wrong = torch.zeros(2, 1, 8, 8)                             # a bridge that always lands on a black image
    prior = BridgePrior(torch.nn.Identity(), ot_ode=True)
    prior.net = OracleNet(wrong, prior.sigma2)
    plain = i2sb.solve(y, op, prior, nfe=10)
    fixed = cddb.solve(y, op, prior, nfe=10, zeta=0.5)
    res = lambda u: (op.A(u) - y).flatten(1).norm(dim=1)
    assert (res(fixed) < 0.95 * res(plain)).all()
    assert torch.equal(cddb.solve(y, op, prior, nfe=10, zeta=0.0), plain)     # zeta = 0: I2SB itself
    assert prior.nfe == 3 * 2 * 10
    assert degraded_image(y, x.shape).shape == x.shape


def test_bridge_solvers_run_only_where_a_bridge_is_configured():
    from ipbench.suite import config as sc
    cfg = sc.select({"profile": "embedded"})
    cfg["priors"]["bridge"] = {"px_sr4": "i2sb_px_sr4"}
    assert sc.applies(cfg, "px_sr4", "pinv")
    cfg["solvers"]["i2sb"] = {"label": "I2SB", "hyper": {}, "per_task": {}}
    assert sc.applies(cfg, "px_sr4", "i2sb") and not sc.applies(cfg, "px_jpeg10", "i2sb")
    cfg["solvers"]["pinv_sr4"] = {"label": "A", "module": "pinv", "tasks": ["px_sr4"], "hyper": {}, "per_task": {}}
    assert sc.applies(cfg, "px_sr4", "pinv_sr4") and not sc.applies(cfg, "px_jpeg10", "pinv_sr4")
    with pytest.raises(ValueError, match="no bridge network for task 'px_jpeg10'"):
        sc.solve_spec(cfg, "px_jpeg10", "i2sb")


def test_bridge_training_fits_pairs_and_the_shipped_file_round_trips(tmp_path, monkeypatch):
    import json
    from ipbench.training.bridge import train_bridge
    from ipbench.priors.bridge import load_bridge
    from ipbench.training.bridge import bridge_setting
    from ipbench.priors.pixel_ddpm import CONFIG, build_unet
    from ipbench.store.files import save_weights
    torch.manual_seed(0)
    small = dict(block_out_channels=(8, 8, 8), norm_num_groups=4, attention_head_dim=4)
    net = build_unet(sample_size=16, **small)
    x0 = torch.rand(16, 1, 16, 16) * 2 - 1
    prior = BridgePrior(net, **bridge_setting("downsampling"))
    ema, card = train_bridge(net, x0, x0.flip(-1), prior, steps=30, batch_size=8, lr=1e-3, ema_decay=0.5)
    assert card["beta_max"] == 0.3 and not card["ot_ode"] and card["final_loss_avg200"] > 0
    path = tmp_path / "i2sb_x.safetensors"
    config = {k: net.config[k] for k in CONFIG}            # the file names its architecture, as training saves it
    sha = save_weights(ema, path, metadata={"card": json.dumps(card), "config": json.dumps(config)})
    loaded = load_bridge({"name": "i2sb_x", "path": path, "sha256": sha})
    assert loaded.beta_max == 0.3 and not loaded.ot_ode
    xn = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded.eps(xn, 500), ema(xn, torch.tensor([500, 500])).sample, atol=1e-6)
    assert bridge_setting("gaussian_blur") == {"beta_max": 1.0, "ot_ode": True}
    from ipbench.training.bridge import model_card, rewrite_card
    card.update(task="px_sr4", init="pixel_ddpm", init_sha256="ab" * 32, n_train=16, n_val=4, val_psnr_nfe100=21.5,
                command="python -m ipbench.training.bridge --task px_sr4")
    save_weights(ema, path, metadata={"card": json.dumps(card)})
    rewrite_card(str(path))                                  # the shipped card is rebuilt from the file's metadata
    text = path.with_suffix(".md").read_text()
    assert text == model_card(card) and "task `px_sr4`" in text and "21.50 dB" in text and "beta_max = 0.3" in text
