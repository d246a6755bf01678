"""UD2M's MNIST study: conditional W2 over a K x N grid (``results/table_w2_<grid>.md``).

For each K (one distilled adapter per K) and each N (a sampling parameter), one UD2M sample per
measurement of the grid's task; the conditional W2 (CFID, ``metrics/w2.py``) between (x, y) and
(x_hat, y) in the W2 embedding's 12-d space (x, x_hat and the zero-padded y all embedded, as the official
code). One job per K writes ``K<k>.json``; the table job sets the grid beside the published one.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ipbench import physics
from ipbench.metrics import conditional_w2, psnr
from . import io
from .seeding import generators


def load_embedding():
    from ipbench.store.files import load_weights
    from ipbench.metrics.w2_embedding import VAEfc
    from ipbench.store.catalog import resolve
    ck = resolve("w2_embedding")
    return load_weights(VAEfc(), ck["path"], ck["sha256"])


def embed(net, x: torch.Tensor, batch: int = 500) -> np.ndarray:
    """mu_z of each item; the min-max normalisation runs per batch of ``batch`` items, as the official code."""
    return torch.cat([net.embed(b) for b in x.split(batch)]).double().numpy()


@torch.no_grad()
def cells(spec: dict, degraded: str, out: str, chunk: int = 250) -> None:
    """All N of one K: conditional W2 (centred covariances, and the official uncentred moments), PSNR, NFE."""
    from ipbench.methods import ud2m
    from ipbench.suite.priors import load_prior
    data = io.read_tensors(degraded)
    x, y, index = data["x"], data["y"], data["index"].tolist()
    op = physics.build_operator(spec["task_spec"]["operator"], x.shape[1:], spec["task_spec"]["sigma_y"])
    K = spec["K"]
    prior = load_prior("pixel", spec["priors"])
    lam, warm_start = ud2m.adapt(prior, spec["adapter"], K) if spec.get("adapter") else (1.0, "official")
    net = load_embedding()
    e_x, e_y = embed(net, x), embed(net, y)
    rows = []
    for N in spec["N"]:
        prior.nfe = 0
        gens = generators(spec["profile"], spec["task"], f"ud2m_grid/K{K}/N{N}", index)
        start = time.perf_counter()
        prior.calls.progress(f"K = {K}, N = {N}: {len(y)} images in chunks of {chunk}")
        x_hat = torch.cat([ud2m.solve(y[i:i + chunk], op, prior, generator=gens[i:i + chunk], K=K, N=N,
                                      lam=lam, warm_start=warm_start) for i in range(0, len(y), chunk)])
        wall = time.perf_counter() - start
        prior.calls.close_progress()
        e_xh = embed(net, x_hat)
        rows.append({"K": K, "N": N, "nfe_per_image": prior.nfe / len(x), "wall_time_s": round(wall, 2),
                     "w2": conditional_w2(e_x, e_xh, e_y), "w2_uncentered": conditional_w2(e_x, e_xh, e_y, "uncentered"),
                     "psnr": float(psnr(x_hat, x).mean())})
        print(f"K = {K}, N = {N}: W2 {rows[-1]['w2']:.3f}, PSNR {rows[-1]['psnr']:.2f} dB, {wall:.1f} s", flush=True)
    io.write_json(out, {"task": spec["task"], "K": K, "prior": spec["priors"]["pixel"], "adapter": spec.get("adapter"),
                        "lam": lam, "warm_start": warm_start, "n_images": len(x), "rows": rows})


def table(spec: dict, cell_files: list[str], paper_csv: str, out: str, out_csv: str | None = None) -> None:
    """``results/table_w2_<grid>.md`` and its numbers (``.csv``): the K x N grid of conditional W2 beside the
    published one, with the trend in N at each K read from both."""
    import pandas as pd
    from ipbench.report.tables import markdown
    cells_ = [io.read_json(f) for f in cell_files]
    rows = {(r["K"], r["N"]): r for c in cells_ for r in c["rows"]}
    paper = pd.read_csv(paper_csv)
    paper = paper[(paper["table"] == spec["paper_table"]) & (paper["metric"] == "W2")]
    published = {}
    for _, p in paper.iterrows():
        k, n = (int(part.split("=")[1]) for part in p["method"].split()[1:3])
        published[(k, n)] = p["value"]
    Ks, Ns = spec["K"], spec["N"]
    grid = [[str(k)] + [(f"{rows[(k, n)]['w2']:.2f}" if (k, n) in rows else "no adapter yet")
                        + (f" ({published[(k, n)]:.2f})" if (k, n) in published else "") for n in Ns] for k in Ks]
    lines = [f"# {spec['title']}", "",
             f"Conditional W2 (CFID in the W2 embedding's 12-d space; lower is better) of one UD2M sample per "
             f"measurement, over {spec['n_images']} test digits of `{spec['task']}`; each cell: measured "
             f"(published). Rows: K unfolded modules (one distilled adapter each); columns: N sampling steps; "
             f"NFE = K x N, as measured.", "",
             markdown(["K \\ N"] + [str(n) for n in Ns], grid), ""]
    lines += ["**W2 against N at each K**, read from the numbers above:", ""]
    for k in Ks:
        lines.append(f"- K = {k}: measured {trend([rows[(k, n)]['w2'] for n in Ns if (k, n) in rows], [n for n in Ns if (k, n) in rows])}; "
                     f"published {trend([published[(k, n)] for n in Ns if (k, n) in published], [n for n in Ns if (k, n) in published])}.")
    lines += ["", markdown(["K", "adapter", "warm start", "lambda", "NFE per image (N = " + ", ".join(map(str, Ns)) + ")",
                            "PSNR (dB)", "wall time (s)"],
                           [[str(c["K"]), c["adapter"] or "none (plain prior)", c.get("warm_start", "?"), f"{c['lam']:.3f}",
                             ", ".join(f"{r['nfe_per_image']:g}" for r in c["rows"]),
                             ", ".join(f"{r['psnr']:.2f}" for r in c["rows"]),
                             ", ".join(f"{r['wall_time_s']:.0f}" for r in c["rows"])]
                            for c in sorted(cells_, key=lambda c: c["K"])]),
              "", "The uncentred variant of the official code (running second moments):", "",
              markdown(["K \\ N"] + [str(n) for n in Ns],
                       [[str(k)] + [f"{rows[(k, n)]['w2_uncentered']:.2f}" if (k, n) in rows else "no adapter yet"
                                    for n in Ns] for k in Ks])]
    if spec.get("notes"):
        lines += ["", spec["notes"].strip()]
    io.write_text(out, "\n".join(lines) + "\n")
    adapters = {c["K"]: c for c in cells_}
    frame = pd.DataFrame([{"K": k, "N": n, "adapter": adapters[k]["adapter"] if k in adapters else None,
                           "warm_start": adapters[k].get("warm_start") if k in adapters else None,
                           **{f: rows[(k, n)][f] if (k, n) in rows else float("nan")
                              for f in ("nfe_per_image", "w2", "w2_uncentered", "psnr", "wall_time_s")},
                           "w2_published": published.get((k, n), float("nan")), "n_images": spec["n_images"]}
                          for k in Ks for n in Ns])
    frame.to_csv(out_csv or str(Path(out).with_suffix(".csv")), index=False, float_format="%.6g")


def trend(values: list[float], Ns: list[int]) -> str:
    """Whether W2 falls with N: 'falls at every step', or where it does not."""
    if len(values) < 2:
        return "not enough cells"
    rises = [f"N = {a} -> {b}" for a, b, u, v in zip(Ns, Ns[1:], values, values[1:]) if v >= u]
    if not rises:
        return f"falls at every step from N = {Ns[0]} to {Ns[-1]} ({values[0]:.2f} -> {values[-1]:.2f})"
    return (f"does not fall at every step: it rises (or stays) at {', '.join(rises)} "
            f"({values[0]:.2f} at N = {Ns[0]}, {values[-1]:.2f} at N = {Ns[-1]})")


@torch.no_grad()
def posterior_figure(spec: dict, degraded: str, out: str) -> None:
    """Posterior samples, their mean and standard deviation for the first test digits (``spec['figure']``:
    K, N, n_images, n_samples), with the grid's adapter for that K."""
    from ipbench.methods import ud2m
    from ipbench.suite.priors import load_prior
    from ipbench.report.figures import measurement_image, posterior_grid
    fig = spec["figure"]
    data = io.read_tensors(degraded)
    n, S = fig["n_images"], fig["n_samples"]
    x, y, index = data["x"][:n], data["y"][:n], data["index"][:n].tolist()
    op = physics.build_operator(spec["task_spec"]["operator"], x.shape[1:], spec["task_spec"]["sigma_y"])
    prior = load_prior("pixel", spec["priors"])
    lam, warm_start = ud2m.adapt(prior, spec["adapter"], fig["K"])
    gens = [g for j in range(S) for g in generators(spec["profile"], spec["task"], f"ud2m_posterior/{j}", index)]
    x_hat = ud2m.solve(y.repeat(S, 1, 1, 1), op, prior, generator=gens, K=fig["K"], N=fig["N"], lam=lam,
                       warm_start=warm_start)
    samples = x_hat.view(S, n, *x.shape[1:]).transpose(0, 1)
    posterior_grid(x, measurement_image(y, x.shape), samples, out,
                   f"UD2M posterior samples, {spec['task']} (K = {fig['K']}, N = {fig['N']}, adapter {spec['adapter']})")
