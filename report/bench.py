"""``results/bench_<name>.md``: what each solver costs, against the network calls it cannot avoid.

Per (task, solver) run record: seconds per image, NFE, autoencoder calls per image, and the
overhead ratio = solve wall time / the time of the same network calls made bare (each call
signature timed alone on random inputs of the same shapes, interleaved with the solve so that both
times see the same load of the machine; ``priors/calls.py``).
A ratio near 1 means the loop around the networks costs nothing; the prox, CG and bookkeeping are
what push it above.
"""
from __future__ import annotations


def published_cost(numbers: list[dict], table: str) -> list[str]:
    """The published runtime and memory table ``table`` of paper_numbers.csv (metrics time_s and memory_gb, one
    row per method) as Markdown lines."""
    rows: dict[str, dict] = {}
    for row in numbers:
        if row["table"] == table:
            r = rows.setdefault(row["method"], {"nfe": row["nfe"], "setting": f"{row['dataset']}, {row['task']}"})
            r[row["metric"]] = float(row["value"])
    if not rows:
        raise ValueError(f"no published numbers for the cost table {table!r}")
    setting = "; ".join(sorted({r["setting"] for r in rows.values()}))
    lines = [f"Published ({table}: {setting}; the paper's GPU, not stated in its sources):", "",
             "| method | NFE | s / clip | peak memory GB |", "|---|---|---|---|"]
    for method, r in rows.items():
        lines.append(f"| {method} | {r['nfe'] or '–'} | {r.get('time_s', float('nan')):g} "
                     f"| {r.get('memory_gb', float('nan')):g} |")
    return lines + [""]


def render_bench(title: str, records: list[dict], published: list[str] | None = None) -> str:
    """``published``: the lines of the paper's own cost table (``published_cost``), printed below the measured."""
    every = "/".join(sorted({str(r["config"].get("bare_timing_every", 0)) for r in records}))
    lines = [f"# {title}", "",
             "Overhead = solve wall time / time of the same network calls made bare (denoiser, encoder, decoder, "
             "text encoder, and the image-text encoder of TReg's adaptive negation; forward, and backward with respect to the "
             "same inputs where the solver differentiates through them), timed alone in the course of the same solve: "
             "a bare replay on random inputs of the call's shapes just before the solver's own call, at the first 9 "
             "calls of each signature (the first a warm-up; fewer once two samples add up to 2 s) and every N-th "
             "after, "
             "its time taken out of the wall time "
             f"(N = {every}, config `bare_timing_every`; 0: every signature timed after the solve); a signature called "
             "once is timed after the solve. The rest of the wall time is the solver's own work besides its "
             "network calls (data steps: CG, SVDs, proximal TV solves, an ADMM-TV warm start) and its loop: an "
             "overhead well above 1 where a solver runs such steps, near 1 where the networks are all it does. "
             "Batched calls: each shard job runs its images in mini-batches (config `sharding`); a call on a "
             "mini-batch counts once. Peak memory: the largest over the shard jobs, GPU memory allocated by torch "
             "on a GPU, the process's resident set on CPU. Prior load: reading and sha256-checking the weights, "
             "building the networks.", "",
             "| task | solver | images | shards x mini-batch | s / image | NFE / image | autoencoder calls / image "
             "| network calls (batched) | bare network s | wall s | overhead | peak memory MB | prior load s |",
             "|" + "---|" * 13]
    for r in records:
        cost = r.get("cost", {})
        bare = sum(cost.get("bare_network_s", {}).values())
        calls = ", ".join(f"{k} {v}" for k, v in cost.get("network_calls", {}).items()) or "–"
        if not cost.get("network_calls"):
            ratio = "– (no network)"
        elif "bare_network_s" not in cost:
            ratio = "not timed (bare_timing off)"
        else:
            ratio = f"{r['wall_time_s'] / bare:.3f}" if bare > 0 else "–"
        shards = r.get("shards") or [{"batch_size": r["n_images"]}]
        lines.append(f"| {r['task']} | {r['config'].get('label', r['solver'])} | {r['n_images']} "
                     f"| {len(shards)} x {shards[0]['batch_size']} "
                     f"| {r['wall_time_s'] / r['n_images']:.3g} | {r['nfe']['per_image']:g} "
                     f"| {cost.get('autoencoder_calls_per_image', 0):g} | {calls} | {bare:.1f} "
                     f"| {r['wall_time_s']:.1f} | {ratio} | {r['peak_memory_mb']:.0f} | {cost.get('prior_load_s', 0):.2f} |")
    profile = {r["profile"] for r in records}
    lines += ["", f"Profile {', '.join(sorted(profile))}; device {records[0]['config'].get('device', 'cpu')}; "
              f"git revision `{records[0]['git_revision']}`.", ""]
    if published:
        lines += published
    return "\n".join(lines)
