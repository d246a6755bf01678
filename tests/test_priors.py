"""Shared diffusion steps against diffusers' schedulers and closed forms; the shipped networks."""
import json
from pathlib import Path

import pytest
import torch

from ipbench.priors.diffusion import add_noise, ddim_step, eps_from_x0, tweedie
from ipbench.priors.schedules import alpha_bar, betas


@pytest.mark.parametrize("kind,beta_schedule", [("linear", "linear"), ("scaled_linear", "scaled_linear")])
def test_schedules_match_diffusers(kind, beta_schedule):
    from diffusers import DDPMScheduler
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule,
                        **({"beta_start": 0.00085, "beta_end": 0.012} if kind == "scaled_linear" else {}))
    assert torch.allclose(alpha_bar(kind).float(), ref.alphas_cumprod, rtol=1e-5)
    with pytest.raises(ValueError, match="valid: linear, scaled_linear"):
        betas("cosine")


def test_tweedie_inverts_noising():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    a = alpha_bar()[torch.tensor([10, 500, 990])]
    x_t = add_noise(x0, eps, a)
    assert torch.allclose(tweedie(x_t, eps, a).float(), x0, atol=1e-4)
    assert torch.allclose(eps_from_x0(x_t, x0, a).float(), eps, atol=1e-4)


def test_ddim_step_matches_diffusers_and_ddpm_posterior():
    from diffusers import DDIMScheduler
    g = torch.Generator().manual_seed(1)
    ab = alpha_bar()
    t, t_next = 600, 400
    x_t, eps_hat = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    ours = ddim_step(tweedie(x_t, eps_hat, ab[t]), eps_hat, ab[t], ab[t_next], eta=0.0)
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                          set_alpha_to_one=False)
    sched.set_timesteps(5)                            # timesteps 800, 600, 400, 200, 0
    ref = sched.step(eps_hat, t, x_t, eta=0.0).prev_sample
    assert torch.allclose(ours.float(), ref, atol=1e-5)
    # eta = 1 between consecutive steps: the injected variance is the DDPM posterior variance
    s = 1.0 * ((1 - ab[t - 1]) / (1 - ab[t])).sqrt() * (1 - ab[t] / ab[t - 1]).sqrt()
    beta_tilde = (1 - ab[t - 1]) / (1 - ab[t]) * betas()[t]
    assert torch.allclose(s**2, beta_tilde)
    with pytest.raises(ValueError, match="needs noise"):
        ddim_step(x_t, eps_hat, ab[t], ab[t_next], eta=0.5)


def test_w2_embedding_inputs_and_shipped_weights():
    import ipbench.suite.config as sc
    from ipbench.datasets import digits
    from ipbench.store.files import load_weights
    from ipbench.metrics.w2_embedding import VAEfc
    assert VAEfc.prepare(torch.rand(2, 1, 32, 32)).shape == (2, 784)
    y = torch.rand(2, 1, 8, 8)
    padded = VAEfc.prepare(y).view(2, 28, 28)
    assert padded[:, :10].abs().sum() == 0 and padded[:, 10:18, 10:18].abs().sum() > 0
    ck = sc.checkpoint("w2_embedding")
    model = load_weights(VAEfc(), sc.ROOT / ck["path"], ck["sha256"])
    x, _ = digits("test", 32, 50)
    z = model.embed(x)
    assert z.shape == (50, 12) and torch.isfinite(z).all()


def test_lcm_scheduler_sampling_is_multistep_consistency_sampling(tiny_consistency_prior):
    """diffusers' LCMScheduler (the gate's sampler) and the suite's consistency sampler are the same chain:
    equal outputs from equal noise, chain after chain (a scheduler that kept its step count between chains
    once made the gate re-noise every chain after the first)."""
    from ipbench.priors.sampling import consistency_sample, lcm_scheduler_sample
    prior = tiny_consistency_prior
    c = prior.embed(["a photo of a handwritten digit 3"]).expand(2, -1, -1)
    for n_steps, steps in ((4, (999, 759, 499, 259)), (8, (999, 879, 759, 639, 499, 379, 259, 139))):
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        for _ in range(2):
            a = lcm_scheduler_sample(prior, c, (2, 4, 4, 4), n_steps, g1)
            b = consistency_sample(prior, c, (2, 4, 4, 4), steps, g2)
            assert torch.allclose(a, b, atol=1e-5)


class _GaussianTeacher(torch.nn.Module):
    """The exact noise prediction for N(0, I) latents: E[eps | z_t] = sqrt(1 - abar_t) z_t (any prompt)."""

    def forward(self, z, t, encoder_hidden_states=None):
        from types import SimpleNamespace
        a = alpha_bar("scaled_linear").float()[t].view(-1, *([1] * (z.ndim - 1)))
        return SimpleNamespace(sample=(1 - a).sqrt() * z)


def test_the_distillation_teacher_steps_m_skips_by_ddim():
    """For N(0, I) data the probability-flow ODE is the identity and one DDIM step from s to t with the exact
    noise scales z by cos(theta_s - theta_t), abar = cos^2 theta: m steps of k give the product of m such factors,
    nearer the identity than one step of m k; timesteps stop at 0."""
    from ipbench.training.lcm import teacher_solve
    abar = alpha_bar("scaled_linear").float()
    theta = abar.sqrt().acos()
    z, t, c = torch.randn(3, 5, 4, 2, 2), torch.tensor([999, 519, 39]), torch.zeros(3, 1, 8)
    z3, t3 = teacher_solve(_GaussianTeacher(), z, t, c, c, 3.0, abar, skip=20, m=3)
    assert t3.tolist() == [939, 459, 0]
    factor = torch.ones(3)
    for j in range(3):
        s, u = (t - 20 * j).clamp_min(0), (t - 20 * (j + 1)).clamp_min(0)
        factor = factor * (theta[s] - theta[u]).cos()
    assert torch.allclose(z3, factor.view(-1, 1, 1, 1, 1) * z, atol=1e-5)
    z1, t1 = teacher_solve(_GaussianTeacher(), z, t, c, c, 3.0, abar, skip=60, m=1)
    assert torch.equal(t1, t3)
    assert ((z3 - z).abs() <= (z1 - z).abs() + 1e-7).all() and not torch.allclose(z1, z3)


def test_the_frame_difference_term_is_for_clips():
    from ipbench.training.lcm import distill, pseudo_huber
    e = torch.randn(2, 1, 4, 3, 3).expand(2, 6, 4, 3, 3)           # the same error on every frame
    assert pseudo_huber(e.diff(dim=1), 1e-3) < 1e-9 < pseudo_huber(e, 1e-3)
    with pytest.raises(ValueError, match="clips"):
        distill(_GaussianTeacher(), torch.randn(4, 4, 2, 2), torch.zeros(4, dtype=torch.long), 1, temporal_weight=1)


def test_load_prior_freezes_every_network():
    """Solvers differentiate w.r.t. images, latents or embeddings: a loaded prior carries no trainable weight."""
    from ipbench.suite.priors import load_prior
    prior = load_prior("consistency", {"consistency": "lcm", "image_text": "similarity"})
    nets = [prior.vae, prior.unet, prior.image_encoder]
    assert all(not p.requires_grad for net in nets for p in net.parameters())


def test_pixel_ddpm_architecture_travels_with_its_weights(tmp_path):
    """A pixel checkpoint names its UNet architecture in its metadata; continuing it keeps that architecture."""
    from ipbench.priors import pixel_ddpm
    from ipbench.training import pixel_ddpm as training
    from ipbench.store.files import sha256_of
    out = tmp_path / "wide.safetensors"
    training.main(["--out", str(out), "--steps", "2", "--batch-size", "4", "--channels", "16,16,32",
                     "--layers-per-block", "2"])
    assert pixel_ddpm.unet_config(out)["block_out_channels"] == [16, 16, 32]
    unet = pixel_ddpm.load_unet(out, sha256_of(out))
    assert unet.config.layers_per_block == 2 and len(unet.down_blocks[0].resnets) == 2
    cont = tmp_path / "cont.safetensors"
    training.main(["--out", str(cont), "--steps", "1", "--batch-size", "4", "--init", str(out)])
    assert pixel_ddpm.unet_config(cont) == pixel_ddpm.unet_config(out)
    with pytest.raises(ValueError, match="architecture"):
        training.main(["--out", str(tmp_path / "x.safetensors"), "--steps", "1", "--init", str(out),
                         "--layers-per-block", "1"])
    # the shipped DDPM (and the bridges, saved before their files named it) build CONFIG's UNet
    from ipbench.suite.config import ROOT, checkpoint
    ck = checkpoint("i2sb_px_sr4")
    assert pixel_ddpm.load_unet(ROOT / ck["path"], ck["sha256"]).config.block_out_channels == (32, 64, 64)


def test_bf16_training_is_autocast_of_the_float32_step(tmp_path):
    """--bf16 runs the forward pass under bfloat16 autocast: the first loss agrees with float32's (same batch)
    to bfloat16 precision, weights and EMA stay float32, the card says so, and the retrain rule's command
    line passes the switch."""
    from ipbench.priors import pixel_ddpm
    from ipbench.training import pixel_ddpm as training
    from ipbench.training.commands import train_cli_args
    from ipbench.priors.schedules import alpha_bar
    from ipbench.training.common import train_epsilon
    data = torch.rand(16, 1, 32, 32) * 2 - 1
    first = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        unet = pixel_ddpm.build_unet(block_out_channels=(16, 16, 32))
        ema, card = train_epsilon(unet, data, alpha_bar("linear"), steps=1, batch_size=8, lr=1e-4,
                                  ema_decay=0.9, seed=0, desc="t", bf16=bf16)
        first[bf16] = card["final_loss_avg200"]
        assert card["precision"] == ("bf16 autocast" if bf16 else "float32")
        assert all(p.dtype == torch.float32 for p in [*unet.parameters(), *ema.parameters()])
    assert first[True] == pytest.approx(first[False], rel=2e-2) and first[True] != first[False]
    args = train_cli_args({"steps": 2, "batch_size": 4, "channels": "16,16,32", "bf16": True, "lr": 1e-4})
    assert args == "--steps 2 --batch-size 4 --channels 16,16,32 --bf16 --lr 0.0001"
    out = tmp_path / "b.safetensors"
    training.main(["--out", str(out), *args.split()])
    from safetensors import safe_open
    with safe_open(str(out), "pt") as f:
        assert json.loads(f.metadata()["card"])["precision"] == "bf16 autocast"
    assert train_cli_args({"bf16": False, "seed": 1}) == "--seed 1"


def test_pixel_gate_measures_a_candidate_file(tmp_path, monkeypatch):
    """``python -m ipbench.training.gates pixel_ddpm --weights F`` gates a retrained file before it replaces the shipped one:
    the samples come from F's network (of F's architecture), not the shipped prior's."""
    from ipbench.priors import pixel_ddpm
    from ipbench.training import gates, pixel_ddpm as training
    out = tmp_path / "cand.safetensors"
    training.main(["--out", str(out), "--steps", "1", "--batch-size", "4", "--channels", "16,16,32"])
    calls = []
    real = pixel_ddpm.PixelDiffusionPrior.eps
    monkeypatch.setattr(pixel_ddpm.PixelDiffusionPrior, "eps",
                        lambda self, x, t: calls.append(tuple(self.unet.config.block_out_channels)) or real(self, x, t))
    report = gates.pixel_ddpm_gate(n=250, steps=2, weights=str(out))
    assert calls == [(16, 16, 32)] * 2 and report["n_samples"] == 250
    assert 0 <= report["confident_share"] <= 1 and report["fid_vs_test_digits"] > report["fid_test_half_vs_half"]
    with pytest.raises(SystemExit):
        gates.main(["lcm", "--weights", str(out)])


def test_pixel_ddpms_are_known_by_how_they_were_trained(tmp_path):
    """Loading, gating and the figures find the pixel DDPMs by their checkpoint's training module, not by
    name: a shipped entry that ``priors.pixel_ddpm`` trains is one; a not-shipped stage (no ``path``) and
    other networks are not."""
    import yaml
    from ipbench.training import gates
    from ipbench.suite.config import trained_by
    shipped = trained_by("ipbench.training.pixel_ddpm")
    assert {"pixel_ddpm", "pixel_ddpm_wide"} <= set(shipped)
    assert not any("stage" in n for n in shipped) and set(shipped) <= set(gates.GATES)
    entries = {"net_a": {"path": "a", "train": {"module": "ipbench.training.pixel_ddpm"}},
               "stage": {"train": {"module": "ipbench.training.pixel_ddpm"}},
               "other": {"path": "b", "train": {"module": "ipbench.training.lcm"}}, "hub": {"hub": "x/y"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(entries))
    assert trained_by("ipbench.training.pixel_ddpm", tmp_path / "c.yaml") == ["net_a"]
    from ipbench.suite.priors import _load
    with pytest.raises(ValueError, match="valid: pixel_ddpm, pixel_ddpm_wide, latent_dm"):
        _load("pixel_ddpm_nope")


def test_install_takes_the_training_command_from_the_card(tmp_path, monkeypatch):
    """``priors.install SRC NAME --from-card`` pins the file and records the module and arguments of the
    command in its card (the inverse of the retrain rule's command line), so the two cannot drift."""
    import functools
    import yaml
    from ipbench.training import install
    from ipbench.training.commands import train_cli_args, train_spec_of
    from ipbench.store.files import save_tensors, sha256_of
    command = ("python -m ipbench.training.ud2m_distill --task px_sr4 --K 3 --steps 1200 --lr 1e-3 --d-output sigmoid "
               "--warm-start ram --base pixel_ddpm_wide --bf16 --out results/retrain/a.safetensors")
    module, args = train_spec_of(command)
    assert module == "ipbench.training.ud2m_distill"
    assert args == {"task": "px_sr4", "K": 3, "steps": 1200, "lr": 0.001, "d_output": "sigmoid",
                    "warm_start": "ram", "base": "pixel_ddpm_wide", "bf16": True}
    assert train_spec_of(f"python -m {module} {train_cli_args(args)}") == (module, args)
    with pytest.raises(ValueError, match="unexpected 'stray'"):
        train_spec_of("python -m m --task t stray")
    # cards made before the training package name the modules where they lived then
    from ipbench.training.commands import current_command
    for old, new in [("priors.ud2m_distill", "ud2m_distill"), ("ipbench.priors.train_digit_net", "digit_net"),
                     ("ipbench.priors.bridge_training", "bridge"), ("priors.pixel_ddpm", "pixel_ddpm")]:
        assert train_spec_of(f"python -m {old} --seed 1")[0] == f"ipbench.training.{new}"
        assert current_command(f"python -m {old} --seed 1") == f"python -m ipbench.training.{new} --seed 1"
        assert (Path(__file__).resolve().parent.parent / "training" / f"{new}.py").exists()
    src = tmp_path / "a.safetensors"
    save_tensors({"w": torch.ones(2)}, src, metadata={"card": json.dumps({"command": command})})
    (tmp_path / "priors" / "weights").mkdir(parents=True)
    catalogue = ("# the catalogue's header\nshipped_net:\n  path: priors/weights/s.safetensors\n  sha256: ab\n\n"
                 "# a fetched one\nhub_net:\n  hub: x/y\n  dtype: float16   # as its official code\n")
    (tmp_path / "c.yaml").write_text(catalogue)
    monkeypatch.setattr(install, "ROOT", tmp_path)
    monkeypatch.setattr(install, "install", functools.partial(install.install, checkpoints=tmp_path / "c.yaml"))
    install.main([str(src), "ud2m_a", "--from-card", "--needs", "pixel_ddpm_wide"])
    entry = yaml.safe_load((tmp_path / "c.yaml").read_text())["ud2m_a"]
    assert entry["train"] == {"module": module, "args": args} and entry["needs"] == ["pixel_ddpm_wide"]
    assert entry["sha256"] == sha256_of(tmp_path / "priors" / "weights" / "ud2m_a.safetensors") == sha256_of(src)
    with pytest.raises(SystemExit):
        install.main([str(src), "ud2m_a", "--from-card", "--train-module", "ipbench.training.ud2m_distill"])
    # the new entry follows the shipped ones; the other entries, their comments and their order stay as written,
    # and installing again replaces the entry in place
    written = (tmp_path / "c.yaml").read_text()
    before, after = catalogue.split("\n# a fetched one\n")
    assert written.startswith(before) and written.endswith("\n# a fetched one\n" + after)
    install.main([str(src), "ud2m_a", "--train-module", "ipbench.training.ud2m_distill", "--train-args", "steps=5"])
    again = (tmp_path / "c.yaml").read_text()
    assert again.startswith(before) and again.endswith("\n# a fetched one\n" + after)
    assert yaml.safe_load(again)["ud2m_a"]["train"]["args"] == {"steps": 5} and again.count("ud2m_a:") == 1
    # an edit that would drop a comment is refused, and neither the catalogue nor the shipped file changes
    commented = again.replace("ud2m_a:\n", "ud2m_a:\n  # kept by hand\n")
    (tmp_path / "c.yaml").write_text(commented)
    other = tmp_path / "b.safetensors"
    save_tensors({"w": torch.zeros(2)}, other)
    shipped = tmp_path / "priors" / "weights" / "ud2m_a.safetensors"
    with pytest.raises(RuntimeError, match="nothing written"):
        install.main([str(other), "ud2m_a", "--train-module", "m", "--train-args", "steps=6"])
    assert (tmp_path / "c.yaml").read_text() == commented and sha256_of(shipped) == sha256_of(src)
    assert sorted(f.name for f in shipped.parent.iterdir()) == ["ud2m_a.safetensors"]


def test_video_gate_measures_a_candidate_file(tmp_path, monkeypatch):
    """``gates video_dm --weights F --n-per-digit k``: the clips come from F (a run's snapshot), not the shipped file."""
    from ipbench.priors import video_dm
    from ipbench.training import gates
    seen, real = [], video_dm.load_video_dm
    monkeypatch.setattr(video_dm, "load_video_dm",        # what the gate asks for; then the shipped file stands in
                        lambda ck, consistency=False: seen.append(ck) or real(gates.resolve("video_dm"), consistency))
    report = gates.video_gate("video_dm", n_per_digit=1, steps=2, weights=str(tmp_path / "cand.safetensors"))
    assert [ck["path"] for ck in seen] == [str(tmp_path / "cand.safetensors")] and seen[0]["sha256"] is None
    assert report["n_clips"] == 10 and "passed" in report
    with pytest.raises(SystemExit):
        gates.main(["latent_dm", "--n-per-digit", "2"])
