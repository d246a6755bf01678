"""Command line of the stages: ``python -m ipbench {degrade,solve,score,table,check,restore,...} ...``.

The Snakemake rules call these with the job's spec as JSON; they are usable by hand too.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ipbench", description=__doc__)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (Snakemake passes the job's)")
    sub = ap.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("fetch", help="download (or find) and verify a dataset or checkpoint file")
    p.add_argument("--key", required=True)
    p.add_argument("--resource", required=True, help="JSON: url / hub + file / manual, optional sha256")
    p.add_argument("--dest", required=True, help="folder; the file lands in DEST/KEY/")
    p.add_argument("--lock", required=True, help="lock file of recorded sha256s")
    p = sub.add_parser("fetch-checkpoint", help="fetch and verify a published checkpoint at its pinned commit")
    p.add_argument("--name", required=True, help="key of config/checkpoints.yaml")
    p.add_argument("--out", required=True, help="manifest written once every file is verified")
    p.add_argument("--lock", help="lock file of recorded sha256s and commits (default: resources/checksums.lock)")
    p = sub.add_parser("pin", help="write the commits and sha256s a run locked into config/checkpoints.yaml")
    p.add_argument("--lock", default="resources/checksums.lock", help="the run's lock file")
    p.add_argument("names", nargs="*", help="only these checkpoints (default: every one the lock holds)")
    p = sub.add_parser("degrade", help="draw the measurements of a task")
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dataset-file", help="dataset file (paper profile), checked against its sha256 before use")
    p.add_argument("--lock", help="lock file of the sha256s recorded on first download (default: resources/checksums.lock)")
    p = sub.add_parser("solve", help="run a solver on (a shard of) a task's measurements")
    p.add_argument("--spec", required=True)
    p.add_argument("--degraded", required=True)
    p.add_argument("--samples", required=True)
    p.add_argument("--meta", required=True)
    p = sub.add_parser("score", help="gather a solve's shards, score them and write the run record")
    p.add_argument("--spec", required=True)
    p.add_argument("--degraded", required=True)
    p.add_argument("--samples", nargs="+", required=True, help="the shards' samples")
    p.add_argument("--meta", nargs="+", required=True, help="the shards' meta, in the same order")
    p.add_argument("--out", required=True)
    p.add_argument("--gathered", help="write the shards' samples as one file here")
    p = sub.add_parser("table", help="aggregate run records into a Markdown table and its CSV")
    p.add_argument("--spec", required=True)
    p.add_argument("--paper-numbers", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--csv", help="the table's numbers as CSV (default: OUT with .csv)")
    p.add_argument("records", nargs="+")
    p = sub.add_parser("figure", help="restoration grid or prompt-calibration figure of a task")
    p.add_argument("kind", choices=["restoration", "calibration", "posterior", "gif"])
    p.add_argument("--spec", required=True)
    p.add_argument("--degraded", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", nargs="*", default=[], help="the solvers' samples (restoration grid)")
    p = sub.add_parser("calibration", help="what LATINO-PRO's calibrated prompts are and restore")
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--degraded", nargs="+", required=True)
    p.add_argument("--records", nargs="+", required=True)
    p.add_argument("--samples", nargs="+", required=True)
    p = sub.add_parser("bench", help="cost report over run records")
    p.add_argument("--spec", required=True)
    p.add_argument("--paper-numbers", default=None, help="report/paper_numbers.csv (for a published cost table)")
    p.add_argument("--out", required=True)
    p.add_argument("records", nargs="+")
    p = sub.add_parser("w2cell", help="UD2M's conditional W2 for one K and every N of a grid")
    p.add_argument("--spec", required=True)
    p.add_argument("--degraded", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("w2table", help="the K x N grid of conditional W2 beside the published one")
    p.add_argument("--spec", required=True)
    p.add_argument("--paper-numbers", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--csv", help="the grid's numbers as CSV (default: OUT with .csv)")
    p.add_argument("cells", nargs="*")
    p = sub.add_parser("tune", help="pick a hyperparameter by PSNR on training digits")
    p.add_argument("--profile", default="embedded")
    p.add_argument("--task", required=True)
    p.add_argument("--solver", required=True)
    p.add_argument("--grid", required=True, action="append", help="name=v1,v2,... (repeat for a product grid)")
    p.add_argument("--n", type=int, default=20, help="training digits")
    p.add_argument("--link", nargs="*", default=[], help="name=factor: set name to factor x the grid value")
    p = sub.add_parser("speed", help="a speed lever side by side, the networks alone, or their report (suite/speed.py)")
    p.add_argument("kind", choices=["pair", "networks", "layouts", "report"])
    p.add_argument("--spec", help="pair, networks, layouts: the job's spec")
    p.add_argument("--degraded", help="pair: the task's measurements")
    p.add_argument("--networks", help="report: the networks' record")
    p.add_argument("--layouts", help="report: the layouts' and compilation's record")
    p.add_argument("--title", help="report: its title (JSON string)")
    p.add_argument("--out", required=True)
    p.add_argument("--records", nargs="*", default=[], help="report: the pairs' records")
    p = sub.add_parser("check", help="validate a config file")
    p.add_argument("config")
    p = sub.add_parser("restore", help="restore an image of your own (suite/restore.py)",
                       description="Restore an image of your own with a configured solver on the profile's priors.")
    p.add_argument("--task", required=True)
    p.add_argument("--solver", required=True)
    p.add_argument("--image", required=True, help="PNG: the task's measurement (or a clean image with --clean)")
    p.add_argument("--out", required=True, help="PNG of the restoration (the posterior mean with --samples)")
    p.add_argument("--profile", default="embedded")
    p.add_argument("--samples", type=int, default=1, help="posterior samples: OUT_std.png and OUT_samples.png too")
    p.add_argument("--clean", action="store_true", help="the image is clean: degrade it with the task first")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from .memory import keep_freed_memory
    keep_freed_memory()       # before the heavy imports: no page faults per network call (suite/memory.py)
    from . import stages  # heavy imports only once the arguments are known
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    spec = json.loads(args.spec) if getattr(args, "spec", None) else None
    try:
        if args.stage == "fetch":
            from ipbench.datasets.fetch import Lock, fetch
            print(fetch(args.key, json.loads(args.resource), args.dest, Lock(args.lock)))
        elif args.stage == "fetch-checkpoint":
            from ipbench.priors.paper import fetch_manifest
            print(json.dumps(fetch_manifest(args.name, args.out, lock_path=args.lock), indent=1))
        elif args.stage == "pin":
            from pathlib import Path

            from ipbench.store.catalog import pin
            print(json.dumps(pin(json.loads(Path(args.lock).read_text()), names=args.names or None), indent=1))
        elif args.stage == "degrade":
            stages.degrade(spec, args.out, args.dataset_file, args.lock)
        elif args.stage == "solve":
            stages.solve(spec, args.degraded, args.samples, args.meta)
        elif args.stage == "score":
            stages.score(spec, args.degraded, args.samples, args.meta, args.out, args.gathered)
        elif args.stage == "table":
            stages.table(spec, args.records, args.paper_numbers, args.out, args.csv)
        elif args.stage == "figure" and args.kind == "restoration":
            stages.restoration_figure(spec, args.degraded, args.samples, args.out)
        elif args.stage == "figure" and args.kind == "gif":
            if len(args.samples) != 1:
                raise ValueError("figure gif takes one solver's samples")
            stages.clip_gif(spec, args.degraded, args.samples[0], args.out)
        elif args.stage == "figure" and args.kind == "posterior":
            from .w2grid import posterior_figure
            posterior_figure(spec, args.degraded, args.out)
        elif args.stage == "figure":
            stages.calibration_figure(spec, args.degraded, args.out)
        elif args.stage == "calibration":
            stages.calibration_report(spec, args.degraded, args.records, args.samples, args.out)
        elif args.stage == "bench":
            stages.bench(spec, args.records, args.out, args.paper_numbers)
        elif args.stage == "w2cell":
            from .w2grid import cells
            cells(spec, args.degraded, args.out)
        elif args.stage == "w2table":
            from .w2grid import table
            table(spec, args.cells, args.paper_numbers, args.out, args.csv)
        elif args.stage == "tune":
            from .tune import tune
            links = {k: float(f) for k, f in (a.split("=", 1) for a in args.link)}
            print(json.dumps(tune(args.profile, args.task, args.solver, args.grid, args.n, links=links)["chosen"]))
        elif args.stage == "restore":
            from .restore import restore
            print(json.dumps(restore(args.task, args.solver, args.image, args.out, profile=args.profile,
                                     samples=args.samples, clean=args.clean), indent=1))
        elif args.stage == "speed":
            from . import speed
            if args.kind == "pair":
                speed.speed_pair(spec, args.degraded, args.out)
            elif args.kind == "networks":
                speed.speed_networks(spec["priors"], args.out, batch=spec["batch"])
            elif args.kind == "layouts":
                speed.speed_layouts(spec["priors"], args.out, batch=spec["batch"])
            else:
                from pathlib import Path
                pairs = [json.loads(Path(r).read_text()) for r in args.records]
                nets, layouts = (json.loads(Path(f).read_text()) if f else None for f in (args.networks, args.layouts))
                Path(args.out).write_text(speed.render(json.loads(args.title) if args.title else "Speed levers",
                                                       pairs, nets, layouts))
        elif args.stage == "check":
            from .config import load
            cfg = load(args.config)
            print(f"{args.config}: valid ({len(cfg['tasks'])} tasks, {len(cfg['solvers'])} solvers, "
                  f"{len(cfg['tables'])} tables)")
    except Exception as err:           # a bad input ends in one line naming it; IPBENCH_TRACEBACK=1 shows where
        if os.environ.get("IPBENCH_TRACEBACK"):
            raise
        kind = "" if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: "
        print(f"error: {kind}{err} (IPBENCH_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """The ``ipbench`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
