"""The embedded video consistency model (the role of CausVid's few-step generator in LVTINO): latent consistency
distillation (``training.lcm.distill``, LCM's Algorithm 1) of the video latent DM on moving-digit clip latents.

Teacher: the video DM (``priors.video_dm``) with classifier-free guidance w, stepped by DDIM over LCM's
skipping-step grid. Student: the image consistency model's U-Net (``lcm``, already distilled per frame) inflated
with the teacher's motion modules, so that distillation starts from a one-step image model that knows the motion.
Train: ``python -m ipbench.training.vcm --out priors/weights/vcm.safetensors``. The shipped weights' last stage
departs from LCM's recipe (``--teacher-steps 3 --temporal-weight 1``; ``training.lcm.distill`` and the card say why).
"""
from __future__ import annotations

import argparse
import json

import torch


def student_init(init: str | None = None):
    """(teacher, student): the ``lcm`` U-Net's layers with the video DM's motion modules (sha256-checked both), or
    the weights ``init`` of an earlier distillation."""
    from ipbench.priors.latent_dm import build_unet
    from ipbench.priors.video_dm import build_video_unet
    from ipbench.store.catalog import resolve
    from ipbench.store.files import load_weights
    lcm, video = resolve("lcm"), resolve("video_dm")
    teacher = load_weights(build_video_unet(), video["path"], video["sha256"])
    if init:
        return teacher, load_weights(build_video_unet(), init, None)
    student = build_video_unet(load_weights(build_unet(), lcm["path"], lcm["sha256"]))
    motion = {k: v for k, v in teacher.state_dict().items() if "motion_modules" in k}
    loaded = student.load_state_dict(motion, strict=False)
    assert not loaded.unexpected_keys
    return teacher, student


def main(argv=None):
    from ipbench.datasets.video import GENERIC_VIDEO_PROMPT, video_caption
    from ipbench.store.files import save_weights

    from .common import snapshot_writer
    from .lcm import distill
    from .video_dm import encode_training_clips
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop early at this wall time (see the card)")
    ap.add_argument("--latents-cache", default=None, help="the encoded training clips (training.video_dm's file)")
    ap.add_argument("--all-layers", action="store_true",
                    help="train every layer of the student (default: its motion modules; the image layers are "
                         "already the per-frame consistency model)")
    ap.add_argument("--init", default=None, help="continue from these weights (an earlier distillation's EMA "
                                                  "target: student and target start from it)")
    ap.add_argument("--snapshot-every", type=int, default=0,
                    help="also write the EMA target so far to OUT.stepN.safetensors every this many steps")
    ap.add_argument("--temporal-weight", type=float, default=0.0,
                    help="weight of the consistency error's frame-to-frame differences in the loss (see "
                         "training.lcm.distill; 0: LCM's loss)")
    ap.add_argument("--teacher-steps", type=int, default=1,
                    help="the consistency target is taken this many skips down, the teacher stepping there in as "
                         "many DDIM steps (1: LCM)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    teacher, student = student_init(args.init)
    z, labels = encode_training_clips(args.clips, cache=args.latents_cache)
    prompts = [video_caption(k) for k in range(10)] + [GENERIC_VIDEO_PROMPT, ""]

    out, card = distill(teacher, z, labels, args.steps, batch_size=args.batch_size, seed=args.seed, init=student,
                        prompts=prompts, max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                        trainable=None if args.all_layers else (lambda name: "motion_modules" in name),
                        snapshot=snapshot_writer(args.out), snapshot_every=args.snapshot_every,
                        temporal_weight=args.temporal_weight, teacher_steps=args.teacher_steps)
    card.update(clips=args.clips, init=args.init or "lcm U-Net + video_dm motion modules",
                trained="all layers" if args.all_layers else "motion modules")
    save_weights(out, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
