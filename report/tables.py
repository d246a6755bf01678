"""Aggregate run records into ``results/table_<name>.md``: measured beside published numbers.

One section per task of the table; one row per solver (measured), followed by the published
rows of methods the suite does not run yet. Each measured cell is the mean over the images
(with its standard error for per-image metrics); the published value follows in parentheses.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

METRICS = {  # key -> (column title, published metric name, format, per-image?)
    "psnr": ("PSNR ↑", "PSNR", "{:.2f}", True),
    "ssim": ("SSIM ↑", "SSIM", "{:.3f}", True),
    "lpips": ("LPIPS ↓", "LPIPS", "{:.3f}", True),
    "fid": ("FID ↓", "FID", "{:.2f}", False),
    "kid": ("KID ×10³ ↓", "KID", "{:.2f}", False),
}


def load_paper_numbers(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def published(numbers: list[dict], table: str | None, task: str | None, method: str | None) -> dict:
    """{metric name: value, 'NFE': nfe} of one published row, empty if there is none."""
    out = {}
    for row in numbers:
        if (row["table"], row["task"], row["method"]) == (table, task, method):
            out[row["metric"]] = float(row["value"])
            if row["nfe"]:
                out["NFE"] = int(row["nfe"])
    return out


SCALE = {"kid": 1e3}


def _cell(record: dict, key: str, fmt: str, per_image: bool) -> str:
    value = record["metrics"][key] * SCALE.get(key, 1)
    if per_image:
        values = np.asarray(record["per_image"][key], dtype=float)
        if len(values) > 1:
            sem = values.std(ddof=1) / math.sqrt(len(values))
            return f"{fmt.format(value)} ± {fmt.format(sem)}"
    return fmt.format(value)


def section(task: dict, solvers: list[dict], records: dict, numbers: list[dict], metrics: list[str],
            elsewhere: dict | None = None) -> list[str]:
    """``elsewhere``: {published method: table name} for rows run in another table (a slow solver kept out of
    this one)."""
    elsewhere = elsewhere or {}
    paper = task.get("paper") or {}
    lines = [f"### {task['title']}", ""]
    if paper:
        lines.append(f"Mirrors: {paper.get('setting', '')} (published table `{paper['table']}`).")
    lines.append(f"Here: {task['description']}")
    lines.append("")
    head = ["Method", "NFE"] + [METRICS[m][0] for m in metrics] + ["images", "s / image"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shown = set()
    for s in solvers:
        if s["key"] not in task.get("solvers", [s["key"]]):
            continue                                   # e.g. a latent solver on a pixel-family task
        rec = records.get((task["key"], s["key"]))
        if rec is None:
            raise FileNotFoundError(f"no run record for solver {s['key']!r} on task {task['key']!r}")
        pub = published(numbers, paper.get("table"), paper.get("task"), s.get("paper_name"))
        shown.add(s.get("paper_name"))
        nfe = f"{rec['nfe']['per_image']:g}" + (f" ({pub['NFE']})" if "NFE" in pub else "")
        cells = [s["label"], nfe]
        for m in metrics:
            title, pub_name, fmt, per_image = METRICS[m]
            cell = _cell(rec, m, fmt, per_image)
            cells.append(cell + (f" ({fmt.format(pub[pub_name])})" if pub_name in pub else ""))
        cells += [str(rec["n_images"]), f"{rec['wall_time_s'] / rec['n_images']:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    configured = {s.get("paper_name") for s in solvers}          # in this table, but not on this task
    missing = sorted({r["method"] for r in numbers if (r["table"], r["task"]) == (paper.get("table"), paper.get("task"))}
                     - shown, key=lambda m: [r["method"] for r in numbers].index(m))
    for method in missing:
        pub = published(numbers, paper["table"], paper["task"], method)
        where = (f"in results/table_{elsewhere[method]}.md" if method in elsewhere
                 else "not run on this task: see the notes" if method in configured else "not run here yet")
        cells = [f"{method} ({where})", f"– ({pub['NFE']})" if "NFE" in pub else "–"]
        for m in metrics:
            _, pub_name, fmt, _ = METRICS[m]
            cells.append(f"– ({fmt.format(pub[pub_name])})" if pub_name in pub else "–")
        cells += ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def wide(spec: dict, records: dict, numbers: list[dict], metrics: list[str]) -> list[str]:
    """One row per solver, a column group per task (the layout of the LATINO-PRO slide)."""
    tasks = spec["tasks"]
    head = ["Method", "NFE"] + [f"{t.get('short', t['key'])} {METRICS[m][0]}" for t in tasks for m in metrics] + ["images"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shown = set()
    runs_on = lambda s, t: s["key"] in t.get("solvers", [s["key"]])     # e.g. no bridge / adapter for a task
    below = spec.get("below_rule", [])
    for s in spec["solvers"]:
        if below and s["key"] == below[0]:                # a rule above the rows the published table does not have
            lines.append("| *below: not in the published table* |" + " |" * (len(head) - 1))
        runs = [runs_on(s, t) for t in tasks]
        recs = [records.get((t["key"], s["key"])) if run else None for t, run in zip(tasks, runs)]
        missing = [t["key"] for t, r, run in zip(tasks, recs, runs) if run and r is None]
        if missing:
            raise FileNotFoundError(f"no run record for solver {s['key']!r} on task(s) {missing}")
        pubs = [published(numbers, (t.get("paper") or {}).get("table"), (t.get("paper") or {}).get("task"),
                          s.get("paper_name")) for t in tasks]
        shown.add(s.get("paper_name"))
        nfe = "/".join(dict.fromkeys(f"{r['nfe']['per_image']:g}" for r in recs if r is not None)) or "–"
        pub_nfe = next((p["NFE"] for p in pubs if "NFE" in p), None)
        cells = [s["label"], nfe + (f" ({pub_nfe})" if pub_nfe is not None else "")]
        for rec, pub in zip(recs, pubs):
            for m in metrics:
                _, pub_name, fmt, _ = METRICS[m]
                value = _cell(rec, m, fmt, False) if rec is not None else "n/a"
                cells.append(value + (f" ({fmt.format(pub[pub_name])})" if pub_name in pub else ""))
        cells.append("/".join(dict.fromkeys(str(r["n_images"]) for r in recs if r is not None)) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    keys = [((t.get("paper") or {}).get("table"), (t.get("paper") or {}).get("task")) for t in tasks]
    order = [r["method"] for r in numbers if (r["table"], r["task"]) in keys]
    for method in sorted(set(order) - shown, key=order.index):
        pubs = [published(numbers, *k, method) for k in keys]
        pub_nfe = next((p["NFE"] for p in pubs if "NFE" in p), None)
        cells = [f"{method} (not run here yet)", f"– ({pub_nfe})" if pub_nfe is not None else "–"]
        for pub in pubs:
            for m in metrics:
                _, pub_name, fmt, _ = METRICS[m]
                cells.append(f"– ({fmt.format(pub[pub_name])})" if pub_name in pub else "–")
        lines.append("| " + " | ".join(cells + ["–"]) + " |")
    if not all(runs_on(s, t) for s in spec["solvers"] for t in tasks):
        lines += ["", "n/a: the solver does not run on that task (see the notes below)."]
    lines.append("")
    for t in tasks:
        paper = t.get("paper") or {}
        lines.append(f"- **{t.get('short', t['key'])}**: {t['description']}"
                     + (f" Mirrors: {paper['setting']}." if paper.get("setting") else ""))
    return lines + [""]


def render_table(spec: dict, records: list[dict], numbers: list[dict]) -> str:
    by_key = {(r["task"], r["solver"]): r for r in records}
    profiles = {r["profile"] for r in records}
    if len(profiles) > 1:
        raise ValueError(f"records of several profiles in one table: {sorted(profiles)}")
    any_rec = records[0]
    lines = [f"# {spec['title']}", "",
             f"Profile `{spec['profile']}`; git revision `{any_rec['git_revision']}`. "
             "Each cell: measured mean ± standard error over the images (published value in parentheses, "
             "where the papers report one). NFE is counted, not declared: network evaluations per image.",
             "",
             f"Feature space of FID / KID / LPIPS: {any_rec['feature_space']}. "
             + spec.get("feature_note", ""),
             "",
             "Seeds: every image has its own generator, seeded from sha256(profile/task/role/index), for the "
             "measurement noise (role `measure`) and for each solver (role = solver name); the seeds are in "
             "the run records under `results/score/`.",
             ""]
    metrics = spec.get("metrics", list(METRICS))
    if spec.get("layout", "long") == "wide":
        lines += wide(spec, by_key, numbers, metrics)
    else:
        for task in spec["tasks"]:
            lines += section(task, spec["solvers"], by_key, numbers, metrics, spec.get("elsewhere"))
    notes = spec.get("notes")
    if notes:
        lines += ["### Notes", "", notes.strip(), ""]
    return "\n".join(lines)
