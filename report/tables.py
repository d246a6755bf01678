"""Aggregate run records into ``results/table_<name>.md``: measured beside published numbers.

One section per task of the table; one row per solver (measured), followed by the published
rows of methods the suite does not run yet. Each measured cell is the mean over the images
(with its standard error for per-image metrics); the published value follows in parentheses.
Under each task: the measured ordering beside the published one, computed from the records, with the
pairs that contradict the published order beyond one standard error. The same numbers go to
``results/table_<name>.csv`` (one row per method and task).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = {  # key -> (column title, published metric name, format, per-image?)
    "psnr": ("PSNR ↑", "PSNR", "{:.2f}", True),
    "ssim": ("SSIM ↑", "SSIM", "{:.3f}", True),
    "lpips": ("LPIPS ↓", "LPIPS", "{:.3f}", True),
    "fid": ("FID ↓", "FID", "{:.2f}", False),
    "kid": ("KID ×10³ ↓", "KID", "{:.2f}", False),
    "fvmd": ("FVMD ↓", "FVMD", "{:.1f}", False),
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
    value, sem = _value(record, key)
    text = fmt.format(value)
    return f"{text} ± {fmt.format(sem)}" if per_image and sem is not None else text


def _value(record: dict, key: str) -> tuple[float, float | None]:
    """(mean, standard error over the images, or None for a set-level metric), in the table's units."""
    value = record["metrics"][key] * SCALE.get(key, 1)
    values = np.asarray(record.get("per_image", {}).get(key, []), dtype=float) * SCALE.get(key, 1)
    sem = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else None
    return value, sem


def _numbers(table: str, task: str, solver: str | None, label: str, rec: dict | None, pub: dict,
             metrics: list[str], status: str) -> dict:
    """One row of the table's CSV: numbers, not formatted cells (NaN where there is none)."""
    row = {"table": table, "task": task, "solver": solver, "method": label, "status": status,
           "nfe": rec["nfe"]["per_image"] if rec else math.nan, "nfe_published": pub.get("NFE", math.nan)}
    for m in metrics:
        value, sem = _value(rec, m) if rec else (math.nan, None)
        row.update({m: value, f"{m}_sem": math.nan if sem is None else sem,
                    f"{m}_published": pub.get(METRICS[m][1], math.nan)})
    row.update({"n_images": rec["n_images"] if rec else math.nan,
                "s_per_image": rec["wall_time_s"] / rec["n_images"] if rec else math.nan})
    return row


def markdown(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown (GitHub pipe) table, rendered by pandas / tabulate."""
    return pd.DataFrame(rows, columns=head).to_markdown(index=False, tablefmt="github", disable_numparse=True)


def section(task: dict, solvers: list[dict], records: dict, numbers: list[dict], metrics: list[str],
            elsewhere: dict | None = None, csv_rows: list | None = None, table: str = "") -> list[str]:
    """``elsewhere``: {published method: table name} for rows run in another table (a slow solver kept out of
    this one). ``csv_rows`` collects the numbers of each row."""
    elsewhere = elsewhere or {}
    csv_rows = [] if csv_rows is None else csv_rows
    paper = task.get("paper") or {}
    lines = [f"### {task['title']}", ""]
    if paper:
        lines.append(f"Mirrors: {paper.get('setting', '')} (published table `{paper['table']}`).")
    lines.append(f"Here: {task['description']}")
    lines.append("")
    head = ["Method", "NFE"] + [METRICS[m][0] for m in metrics] + ["images", "s / image"]
    rows, shown, ranked = [], set(), []
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
        rows.append(cells)
        csv_rows.append(_numbers(table, task["key"], s["key"], s["label"], rec, pub, metrics, "measured"))
        ranked.append(csv_rows[-1])
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
        rows.append(cells)
        csv_rows.append(_numbers(table, task["key"], None, method, None, pub, metrics, where))
    lines += [markdown(head, rows), ""]
    return lines + ordering_lines(ranked, metrics)


def wide(spec: dict, records: dict, numbers: list[dict], metrics: list[str], csv_rows: list | None = None) -> list[str]:
    """One row per solver, a column group per task (the layout of the LATINO-PRO slide)."""
    csv_rows = [] if csv_rows is None else csv_rows
    tasks = spec["tasks"]
    head = ["Method", "NFE"] + [f"{t.get('short', t['key'])} {METRICS[m][0]}" for t in tasks for m in metrics] + ["images"]
    rows, shown, ranked = [], set(), {t["key"]: [] for t in tasks}
    runs_on = lambda s, t: s["key"] in t.get("solvers", [s["key"]])     # e.g. no bridge / adapter for a task
    below = spec.get("below_rule", [])
    for s in spec["solvers"]:
        if below and s["key"] == below[0]:                # a rule above the rows the published table does not have
            rows.append(["*below: not in the published table*"] + [""] * (len(head) - 1))
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
        for t, rec, pub in zip(tasks, recs, pubs):
            for m in metrics:
                _, pub_name, fmt, _ = METRICS[m]
                value = _cell(rec, m, fmt, False) if rec is not None else "n/a"
                cells.append(value + (f" ({fmt.format(pub[pub_name])})" if pub_name in pub else ""))
            csv_rows.append(_numbers(spec.get("name", ""), t["key"], s["key"], s["label"], rec, pub, metrics,
                                     "measured" if rec is not None else "not run on this task"))
            if rec is not None:
                ranked[t["key"]].append(csv_rows[-1])
        cells.append("/".join(dict.fromkeys(str(r["n_images"]) for r in recs if r is not None)) or "–")
        rows.append(cells)
    keys = [((t.get("paper") or {}).get("table"), (t.get("paper") or {}).get("task")) for t in tasks]
    order = [r["method"] for r in numbers if (r["table"], r["task"]) in keys]
    for method in sorted(set(order) - shown, key=order.index):
        pubs = [published(numbers, *k, method) for k in keys]
        pub_nfe = next((p["NFE"] for p in pubs if "NFE" in p), None)
        cells = [f"{method} (not run here yet)", f"– ({pub_nfe})" if pub_nfe is not None else "–"]
        for t, pub in zip(tasks, pubs):
            for m in metrics:
                _, pub_name, fmt, _ = METRICS[m]
                cells.append(f"– ({fmt.format(pub[pub_name])})" if pub_name in pub else "–")
            csv_rows.append(_numbers(spec.get("name", ""), t["key"], None, method, None, pub, metrics, "not run here yet"))
        rows.append(cells + ["–"])
    lines = [markdown(head, rows)]
    if not all(runs_on(s, t) for s in spec["solvers"] for t in tasks):
        lines += ["", "n/a: the solver does not run on that task (see the notes below)."]
    lines.append("")
    for t in tasks:
        paper = t.get("paper") or {}
        lines.append(f"- **{t.get('short', t['key'])}**: {t['description']}"
                     + (f" Mirrors: {paper['setting']}." if paper.get("setting") else ""))
    lines.append("")
    for t in tasks:
        lines += ordering_lines(ranked[t["key"]], metrics, f"{t.get('short', t['key'])}: ")
    return lines


def ordering_lines(rows: list[dict], metrics: list[str], prefix: str = "") -> list[str]:
    """The measured and the published ordering of the rows that have a published value, per metric, and the
    pairs whose measured order contradicts the published one by more than one standard error of the difference
    (set-level metrics, which have none: any contradiction)."""
    out = []
    for m in metrics:
        title, _, fmt, _ = METRICS[m]
        both = [r for r in rows if not math.isnan(r[f"{m}_published"]) and not math.isnan(r[m])]
        if len(both) < 2:
            continue
        higher = "↑" in title
        key = (lambda r, c: -r[c]) if higher else (lambda r, c: r[c])
        measured = sorted(both, key=lambda r: key(r, m))
        paper = sorted(both, key=lambda r: key(r, f"{m}_published"))
        sign = ">" if higher else "<"
        contradictions = []
        for i, a in enumerate(paper):
            for b in paper[i + 1:]:              # the paper ranks a above b
                if a[f"{m}_published"] == b[f"{m}_published"]:
                    continue
                d = a[m] - b[m] if higher else b[m] - a[m]          # > 0: measured agrees
                se = math.sqrt(np.nansum([a[f"{m}_sem"] ** 2, b[f"{m}_sem"] ** 2]))
                if d < -se:
                    contradictions.append(f"{b['method']} {sign} {a['method']} by {fmt.format(-d)}"
                                          + (f" ± {fmt.format(se)}" if se > 0 else ""))
        out.append(f"{prefix}**Ordering by {title}** (rows with a published value): measured "
                   + f" {sign} ".join(r["method"] for r in measured) + "; published "
                   + f" {sign} ".join(r["method"] for r in paper) + ". "
                   + ("Contradicts the published order beyond one standard error: " + "; ".join(contradictions) + "."
                      if contradictions else "No pair contradicts the published order beyond one standard error."))
        out.append("")
    return out


def render(spec: dict, records: list[dict], numbers: list[dict]) -> tuple[str, pd.DataFrame]:
    """(the Markdown table, its numbers as a data frame: one row per method and task)."""
    by_key = {(r["task"], r["solver"]): r for r in records}
    profiles = {r["profile"] for r in records}
    if len(profiles) > 1:
        raise ValueError(f"records of several profiles in one table: {sorted(profiles)}")
    any_rec = records[0]
    lines = [f"# {spec['title']}", "",
             f"Profile `{spec['profile']}`; git revision `{any_rec['git_revision']}`; network precision "
             f"{', '.join(sorted({r['config'].get('precision', 'float32') for r in records}))} (config `precision`). "
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
    csv_rows: list[dict] = []
    if spec.get("paper_tables"):        # the same runs beside each of several published tables (LVTINO's two)
        for table, heading in spec["paper_tables"].items():
            beside = {**spec, "tasks": [{**t, "paper": {**(t.get("paper") or {}), "table": table}}
                                        for t in spec["tasks"]]}
            lines += [f"## {heading}", ""] + wide(beside, by_key, numbers, metrics, csv_rows)
    elif spec.get("layout", "long") == "wide":
        lines += wide(spec, by_key, numbers, metrics, csv_rows)
    else:
        for task in spec["tasks"]:
            lines += section(task, spec["solvers"], by_key, numbers, metrics, spec.get("elsewhere"), csv_rows,
                             spec.get("name", ""))
    notes = spec.get("notes")
    if notes:
        lines += ["### Notes", "", notes.strip(), ""]
    frame = pd.DataFrame(csv_rows)
    frame.insert(0, "profile", spec["profile"])
    frame["git_revision"] = any_rec["git_revision"]
    return "\n".join(lines), frame


def render_table(spec: dict, records: list[dict], numbers: list[dict]) -> str:
    return render(spec, records, numbers)[0]
