"""The run record: one JSON document per (profile, task, solver), validated against one schema."""
from __future__ import annotations

import subprocess
from pathlib import Path

import jsonschema

SCHEMA_ID = "bench-run-record/1"

_numbers = {"type": "array", "items": {"type": "number"}}

SCHEMA = {
    "type": "object",
    "required": ["schema", "profile", "task", "solver", "config", "git_revision", "created_utc", "n_images",
                 "seeds", "nfe", "wall_time_s", "peak_memory_mb", "feature_space", "per_image", "metrics"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "profile": {"type": "string"}, "task": {"type": "string"}, "solver": {"type": "string"},
        "config": {"type": "object", "description": "the resolved job spec that produced the record"},
        "git_revision": {"type": "string"},
        "created_utc": {"type": "string"},
        "n_images": {"type": "integer", "minimum": 1},
        "seeds": {"type": "object", "required": ["measure", "solver"],
                  "properties": {"measure": {"type": "array", "items": {"type": "integer"}},
                                 "solver": {"type": "array", "items": {"type": "integer"}}}},
        "nfe": {"type": "object", "required": ["per_image", "total"],
                "properties": {"per_image": {"type": "number", "minimum": 0},
                               "total": {"type": "integer", "minimum": 0}}},
        "wall_time_s": {"type": "number", "minimum": 0},
        "peak_memory_mb": {"type": "number", "minimum": 0},
        "cost": {"type": "object", "description": "autoencoder calls per image, network calls by kind (batched "
                 "calls count once), the seconds those calls take alone (priors/calls.py) and the seconds spent "
                 "timing them, interleaved with the solve and not part of wall_time_s",
                 "properties": {"autoencoder_calls_per_image": {"type": "number", "minimum": 0},
                                "prior_load_s": {"type": "number", "minimum": 0},
                                "bare_timing_s": {"type": "number", "minimum": 0},
                                "network_calls": {"type": "object"},
                                "bare_network_s": {"type": "object",
                                                   "additionalProperties": {"type": "number", "minimum": 0}}}},
        "shards": {"type": "array", "description": "the solve's shards (separate jobs): image range [start, stop), "
                   "mini-batch size, wall time, peak memory and NFE of each",
                   "items": {"type": "object", "required": ["shard", "batch_size", "wall_time_s", "peak_memory_mb"],
                             "properties": {"shard": {"type": "array", "items": {"type": "integer"},
                                                      "minItems": 2, "maxItems": 2},
                                            "batch_size": {"type": "integer", "minimum": 1}}}},
        "feature_space": {"type": "string"},
        "per_image": {"type": "object", "required": ["index", "psnr", "ssim", "lpips"],
                      "properties": {"index": {"type": "array", "items": {"type": "integer"}},
                                     "psnr": _numbers, "ssim": _numbers, "lpips": _numbers,
                                     "digit_accuracy": {**_numbers, "description": "1 where the digit network "
                                                        "reads the restoration as the true digit (embedded)"}}},
        "metrics": {"type": "object", "required": ["psnr", "ssim", "lpips", "fid", "kid"],
                    "additionalProperties": {"type": "number"}},
    },
}


def validate_record(record: dict) -> dict:
    try:
        jsonschema.validate(record, SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise ValueError(f"invalid run record at {where}: {err.message}") from None
    n = record["n_images"]
    for key, values in record["per_image"].items():
        if len(values) != n:
            raise ValueError(f"invalid run record: per_image/{key} has {len(values)} values for {n} images")
    return record


def git_revision(root: str | Path = ".") -> str:
    """HEAD's commit, suffixed '-dirty' when tracked files differ; 'unknown' outside a checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
