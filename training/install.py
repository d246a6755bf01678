"""Install a trained network as a shipped checkpoint: copy it under priors/weights/, pin its sha256
in config/checkpoints.yaml and carry the numbers the loaders need (e.g. the autoencoder's latent
scaling factor) from the training card stored in the file's metadata.

    python -m ipbench.training.install results/retrain/autoencoder.safetensors autoencoder \\
        --train-module ipbench.priors.autoencoder --train-args steps=3000 seed=0 --needs digit_net
    python -m ipbench.training.install results/retrain/ud2m_px_sr4_k3.safetensors ud2m_px_sr4_k3 --from-card --needs pixel_ddpm
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import yaml
from safetensors import safe_open

from ipbench.store.catalog import CONFIG_DIR, ROOT, set_entry
from ipbench.store.files import sha256_of

CARRIED = ("scaling_factor", "feature_rms")


def card_of(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("card", "{}"))


def rewrite_card(path: str, render) -> None:
    """Regenerate the Markdown card beside a trained file from the training card in its metadata."""
    Path(path).with_suffix(".md").write_text(render(card_of(Path(path))))


def install(src: Path, name: str, train_module: str, train_args: dict, needs: list[str],
            checkpoints: Path = CONFIG_DIR / "checkpoints.yaml") -> dict:
    """Copy ``src`` to priors/weights/NAME.safetensors and pin it in the catalogue. The catalogue is written
    first and the file replaced only then (atomically), so a refused catalogue edit leaves the shipped file and
    its entry as they were."""
    dest = ROOT / "priors" / "weights" / f"{name}.safetensors"
    card = card_of(src)
    entry = {"path": str(dest.relative_to(ROOT)), "sha256": sha256_of(src), "card": f"priors/weights/{name}.md"}
    entry.update({k: card[k] for k in CARRIED if k in card})
    if needs:
        entry["needs"] = needs
    entry["train"] = {"module": train_module, "args": train_args}
    set_entry(name, entry, checkpoints)
    if src.resolve() != dest.resolve():
        staged = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, staged)
        os.replace(staged, dest)
        if src.with_suffix(".md").exists():                  # a card written by the trainer
            shutil.copyfile(src.with_suffix(".md"), dest.with_suffix(".md"))
    return {"entry": entry, "card": card}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("name")
    ap.add_argument("--train-module")
    ap.add_argument("--train-args", nargs="*", default=[], help="key=value pairs")
    ap.add_argument("--from-card", action="store_true",
                    help="take the training module and arguments from the command in the file's card")
    ap.add_argument("--needs", nargs="*", default=[], help="checkpoints this one is loaded with")
    args = ap.parse_args(argv)
    if args.from_card == bool(args.train_module or args.train_args):
        ap.error("give either --from-card or --train-module (with --train-args)")
    if args.from_card:
        from .commands import train_spec_of
        command = card_of(Path(args.src)).get("command")
        if not command:
            ap.error(f"{args.src} has no training command in its card")
        module, train_args = train_spec_of(command)
    else:
        module = args.train_module
        train_args = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.train_args)}
    print(json.dumps(install(Path(args.src), args.name, module, train_args, args.needs), indent=1))


if __name__ == "__main__":
    main()
