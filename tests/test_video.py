"""The video branch: moving digits, the video prior's protocol, LVTINO's and VISION-XL's loops (NFE, the
official schedules, their likelihood steps against closed forms) on a random-weight video U-Net."""
import numpy as np
import pytest
import torch

from ipbench import physics
from ipbench.datasets import video as vd
from ipbench.priors import tv


def test_moving_digits_are_deterministic_bounce_and_stay_on_the_canvas():
    x, labels, path = vd.moving_digits("test", 10)
    assert x.shape == (10, vd.FRAMES, 1, 64, 64) and labels.tolist() == list(range(10))
    again, _, _ = vd.moving_digits("test", 3, start=2)
    assert torch.equal(again, x[2:5])
    v = np.diff(path.numpy(), axis=1)
    speed = np.linalg.norm(v, axis=-1)
    median = np.median(speed, axis=1)                                   # a bounce folds one step: shorter
    assert (median >= vd.SPEED[0]).all() and (median <= vd.SPEED[1]).all() and (speed <= vd.SPEED[1] + 1e-9).all()
    assert (np.sign(v[:, 1:]) != np.sign(v[:, :-1])).any()            # at least one bounce in ten clips
    ink = x[:, :, 0].sum((-1, -2))
    assert torch.allclose(ink, ink[:, :1], rtol=0.02)                  # the digit never leaves the canvas
    train, _, _ = vd.moving_digits("train", 2)
    assert not torch.equal(train, x[:2])
    with pytest.raises(ValueError, match="has 100 clips"):
        vd.moving_digits("test", 5, start=98)


def test_a_new_video_unet_is_its_image_unet_on_every_frame():
    """AnimateDiff's inflation: the motion modules start at zero output, so training starts from the image
    model (diffusers' MotionAdapter alone leaves them random)."""
    from ipbench.priors.latent_dm import build_unet
    from ipbench.priors.video_dm import build_video_unet
    torch.manual_seed(0)
    image = build_unet().eval()
    for p in image.parameters():                       # non-trivial weights (some layers start at zero)
        p.data.normal_(0, 0.05)
    video = build_video_unet(image).eval()
    z, t, c = torch.randn(2, 5, 4, 8, 8), torch.tensor([300, 700]), torch.randn(2, 7, image.config.cross_attention_dim)
    with torch.no_grad():
        clip = video(z, t, c).sample
        frames = image(z.flatten(0, 1), t.repeat_interleave(5), encoder_hidden_states=c.repeat_interleave(5, 0)).sample
    assert torch.allclose(clip.flatten(0, 1), frames, atol=1e-5 * frames.abs().max().item())


def test_time_tv_pdhg_matches_the_two_frame_closed_form():
    """A = I on two frames: argmin 1/2 |x - y|^2 + lam |x_2 - x_1| moves each frame by lam towards the other,
    or to their mean where |y_2 - y_1| <= 2 lam."""
    op = physics.build_operator({"name": "video_downsampling", "t": 1, "s": 1}, (2, 1, 4, 4), 0.0)
    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, 2, 1, 4, 4, generator=g, dtype=torch.float64)
    lam = 0.2
    x = tv.l2_tv_pdhg(op, y, torch.zeros_like(y), lam, dims=(-4,), n_iter=3000)
    d = y[:, 1] - y[:, 0]
    mean = (y[:, 0] + y[:, 1]) / 2
    shift = torch.where(d.abs() <= 2 * lam, d / 2, lam * d.sign())
    assert torch.allclose(x[:, 0], torch.where(d.abs() <= 2 * lam, mean, y[:, 0] + shift), atol=1e-4)
    assert torch.allclose(x[:, 1], torch.where(d.abs() <= 2 * lam, mean, y[:, 1] - shift), atol=1e-4)


def test_tv3d_adam_lowers_its_objective_and_stays_in_bounds():
    op = physics.build_operator({"name": "video_downsampling", "t": 2, "s": 2}, (4, 1, 8, 8), 0.0)
    g = torch.Generator().manual_seed(1)
    x_true = torch.rand(1, 4, 1, 8, 8, generator=g) * 2 - 1
    y = op.A(x_true)
    objective = lambda x: 0.5 * (op.A(x) - y).pow(2).sum() + 1e-3 * (tv.grad(x, (-4, -2, -1)).pow(2).sum(0)
                                                                    + 1e-4).sqrt().sum()
    x0 = torch.zeros_like(x_true)
    x = tv.l2_tv_adam(op, y, x0, 1e-3, n_iter=55)
    assert objective(x) < 0.2 * objective(x0) and x.abs().max() <= 1


def test_vcm_timesteps_match_the_official_noise_levels():
    from ipbench.methods.lvtino import FLOW_STEPS, vp_timestep_of_flow
    from ipbench.priors.schedules import alpha_bar
    steps = [vp_timestep_of_flow(t) for t in FLOW_STEPS["AB"]]
    assert steps == [682, 380, 213, 99, 23]
    abar = alpha_bar("scaled_linear")
    sigma = 0.7568                 # t = 757 on Wan's grid: timestep = 1000 sigma, sigma = 8 u / (1 + 7 u), u = 0.28
    snr_flow = ((1 - sigma) / sigma) ** 2
    assert abs(float(abar[682] / (1 - abar[682])) / snr_flow - 1) < 0.02


def test_lvtino_problem_b_switches_its_gammas_where_the_official_loop_does():
    """bidirectional_LVTINO.py: the prox after the VCM takes 3539 while its iteration index < 2, the prox after
    the ICM 16868 while index < 3; the ICM step opens iteration index, so it follows the suite's VCM step
    k = index - 1. Over the five VCM steps: first gammas at k = 0..4, second gammas at k = 0..3."""
    from ipbench.methods.lvtino import first_step, second_step

    class Op:
        def prox(self, x, y, gamma):
            return torch.full_like(x, gamma / 1e5)
    hp = {"gamma_first": (3539.0, 1363.0), "gamma_second": (16868.0, 2721.0)}
    x = torch.zeros(1)
    first = [round(float(first_step("prox", Op(), x, x, k, hp)) * 1e5) for k in range(5)]
    second = [round(float(second_step("prox", Op(), x, x, x, k, hp)) * 1e5) for k in range(4)]
    assert first == [3539, 3539, 1363, 1363, 1363]
    assert second == [16868, 16868, 2721, 2721]


@pytest.fixture(scope="module")
def random_video_pair():
    """LVTINO's prior pair with random weights: the video U-Net inflated from a random image U-Net, a random
    image consistency model and autoencoder (the shipped architectures)."""
    from ipbench.priors.autoencoder import build_autoencoder
    from ipbench.priors.latent import ConsistencyPrior
    from ipbench.priors.latent_dm import build_unet
    from ipbench.priors.text import TextEncoder
    from ipbench.priors.video_dm import VideoImagePair, build_video_unet, video_prior
    torch.manual_seed(0)
    vae, text = build_autoencoder().eval(), TextEncoder()
    video = video_prior(vae, build_video_unet().eval(), 1.0, consistency=True, text_encoder=text)
    image = ConsistencyPrior(vae, build_unet().eval(), 1.0, text)
    image.generic_prompt = "a photo of a handwritten digit"
    return VideoImagePair(video, image)


@pytest.mark.slow            # a full 25-frame clip through every step (about half a minute each)
@pytest.mark.parametrize("problem,spec,nfe", [
    ("A", {"t": 4, "s": 4, "temporal": "pool"}, 9),
    ("B", {"t": 7, "s": 8, "temporal": "blur"}, 9),
    ("C", {"t": 8, "s": 8, "temporal": "pool"}, 5),
])
def test_lvtino_makes_the_official_calls(random_video_pair, problem, spec, nfe):
    """5 VCM + 4 ICM calls (A, B), 3 + 2 (C), each on a whole clip; the ICM runs on every frame of both clips as
    one batch and counts once per clip; one shared noise draw per clip makes the ICM input's noise equal
    across frames."""
    from ipbench.methods import lvtino
    prior = random_video_pair
    prior.video.nfe = prior.image.nfe = 0
    prior.calls.clear()
    op = physics.build_operator({"name": "video_downsampling", "spatial_filter": "bicubic", **spec},
                                (25, 1, 64, 64), 0.001)
    x, _, _ = vd.moving_digits("test", 2)
    g = [torch.Generator().manual_seed(i) for i in range(2)]
    y = op.measure(x, g)
    run = lambda: lvtino.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)],
                               problem=problem, pdhg_iter=5, adam_iter=3)
    out = run()
    assert out.shape == x.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert prior.nfe == 2 * nfe
    calls = prior.calls.summary()
    n_vcm, n_icm = len(lvtino.PROBLEMS[problem]["vcm"]), len(lvtino.PROBLEMS[problem]["vcm"]) - 1
    assert calls["video denoiser"] == n_vcm and calls["image denoiser"] == n_icm
    assert calls["video encoder"] == n_vcm and calls["image encoder"] == n_icm
    if problem == "B":                                                 # seeded: reproducible
        assert torch.equal(run(), out) and lvtino.__doc__ and lvtino.PAPER_NAME == "LVTINO"


@pytest.mark.slow
def test_vision_xl_runs_the_official_grid(random_video_pair):
    """VISION-XL on the image prior per frame: 8 inversion calls on frame 0 and 8 sampling steps on the
    25-step grid below t = 300 (281, ..., 1), each on all frames at once."""
    from ipbench.baselines import vision_xl
    from ipbench.priors.diffusion import ldm_steps
    prior = random_video_pair.image
    prior.nfe = 0
    prior.calls.clear()
    assert [t for t, _, _ in ldm_steps(prior.abar, 25) if t <= 300] == [281, 241, 201, 161, 121, 81, 41, 1]
    op = physics.build_operator({"name": "video_downsampling", "t": 4, "s": 4, "spatial_filter": "bicubic"},
                                (25, 1, 64, 64), 0.001)
    x, _, _ = vd.moving_digits("test", 2)
    y = op.measure(x, [torch.Generator().manual_seed(i) for i in range(2)])
    run = lambda: vision_xl.solve(y, op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)],
                                  cg_steps=2)
    out = run()
    assert out.shape == x.shape and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert prior.nfe == 2 * 8 + 2 * 8
    assert torch.equal(run(), out) and vision_xl.__doc__ and vision_xl.PAPER_NAME == "VISION-XL"
    assert vision_xl.normalised_adjoint(op, op.A(torch.ones_like(x))).allclose(torch.ones_like(x), atol=1e-5)


def test_video_figures_show_frames_an_xt_slice_and_a_gif(tmp_path):
    import imageio.v3 as iio
    from ipbench.report.figures import measurement_clip, video_strips, write_gif
    x, _, _ = vd.moving_digits("test", 1)
    op = physics.build_operator({"name": "video_downsampling", "t": 8, "s": 8, "spatial_filter": "bicubic"},
                                x.shape[1:], 0.001)
    y = op.measure(x, torch.Generator().manual_seed(0))
    shown = measurement_clip(y[0], x.shape[1:], op)
    assert shown.shape == x.shape[1:] and torch.equal(shown[7], shown[0]) and not torch.equal(shown[8], shown[0])
    video_strips("Problem C", x[0], y[0], {"A†y": op.A_dagger(y, rcond=0.03)[0].float()}, str(tmp_path / "s.png"),
                 op=op)
    write_gif(x[0], str(tmp_path / "c.gif"))
    assert (tmp_path / "s.png").stat().st_size > 0
    frames = iio.imread(str(tmp_path / "c.gif"))
    assert frames.shape[:3] == (25, 64, 64)
    assert np.allclose(frames[3, ..., 0], (x[0, 3, 0] * 255).round().numpy(), atol=1)


def test_a_clip_gif_shows_truth_measurement_and_estimate_side_by_side(tmp_path):
    import imageio.v3 as iio
    from ipbench.suite import io, stages
    x, _, _ = vd.moving_digits("test", 2)
    spec = {"operator": {"name": "video_downsampling", "t": 8, "s": 8, "spatial_filter": "bicubic"}, "sigma_y": 0.001}
    op = physics.build_operator(spec["operator"], x.shape[1:], spec["sigma_y"])
    y = op.measure(x, torch.Generator().manual_seed(0))
    io.write_tensors(tmp_path / "d.safetensors", {"x": x, "y": y})
    io.write_tensors(tmp_path / "s.safetensors", {"x_hat": 1 - x})
    stages.clip_gif(spec, str(tmp_path / "d.safetensors"), str(tmp_path / "s.safetensors"), str(tmp_path / "c.gif"))
    frames = iio.imread(str(tmp_path / "c.gif"))[..., 0].astype(float) / 255
    assert frames.shape == (25, 64, 3 * 64 + 2 * 2)
    assert np.allclose(frames[5, :, :64], x[0, 5, 0].numpy(), atol=1 / 255)
    assert np.allclose(frames[5, :, -64:], 1 - x[0, 5, 0].numpy(), atol=1 / 255)
    assert (frames[:, :, 64:66] == 1).all()                           # the white gap between panels
    io.write_tensors(tmp_path / "img.safetensors", {"x": x[:, 0], "y": x[:, 0]})
    with pytest.raises(ValueError, match="images, not clips"):
        stages.clip_gif(spec, str(tmp_path / "img.safetensors"), str(tmp_path / "s.safetensors"), str(tmp_path / "i.gif"))


def test_the_video_gate_reads_motion_from_the_ink_centre():
    """The gate's motion statistic: a clip's ink centre moves with its trajectory (bilinear shifts keep the
    centre of mass exactly shifted while the digit stays on the canvas), so its speed is the trajectory's."""
    from ipbench.training.gates import centre_of_mass
    x, _, path = vd.moving_digits("test", 3)
    com = centre_of_mass(x).double()
    assert torch.allclose(com - com[:, :1], path - path[:, :1], atol=0.02)


def test_the_video_gate_tells_a_moving_digit_from_independent_frames():
    """Frames of a clip drawn independently (here: the test clips' frames shuffled in time) keep their digit and
    can jump at any speed, but not smoothly: the centre's acceleration separates them from the test clips."""
    from ipbench.training.gates import clip_statistics
    x, labels, _ = vd.moving_digits("test", 20)
    smooth = clip_statistics(x, labels)
    shuffled = clip_statistics(x[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(0))], labels)
    assert smooth["frames_read_as_prompted_digit"] == shuffled["frames_read_as_prompted_digit"]
    assert smooth["centre_acceleration_px_per_frame2"] < 0.25 * smooth["centre_speed_px_per_frame"]
    assert shuffled["centre_acceleration_px_per_frame2"] > 2 * smooth["centre_speed_px_per_frame"]
