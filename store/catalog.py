"""The checkpoint catalogue, ``config/checkpoints.yaml``: a name -> its pinned file, sha256 and card fields.

Loaders take what ``resolve`` returns (the entry with an absolute ``path`` and its ``needs`` resolved in
turn); only callers, which know a name, read the catalogue. Imports no torch (planning the DAG reads it).

``IPBENCH_CHECKPOINTS=FILE`` lays a YAML file of entries over the catalogue (merged key by key; the planner and
every job read the same): a mirror's ``url``, a local fine-tune, or the ``architecture`` of a tiny replica of
a network whose shape is otherwise fixed in code (ADM, the I2SB bridges), as the tests run the paper profile."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
CATALOGUE = CONFIG_DIR / "checkpoints.yaml"
OVERLAY = "IPBENCH_CHECKPOINTS"


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def entries(path: Path = CATALOGUE) -> dict:
    catalogue = yaml.safe_load(Path(path).read_text())
    overlay = os.environ.get(OVERLAY) if Path(path) == CATALOGUE else None
    if overlay:
        if not Path(overlay).is_file():
            raise FileNotFoundError(f"{OVERLAY}={overlay}: no such file (a YAML file of catalogue entries)")
        extra = yaml.safe_load(Path(overlay).read_text()) or {}
        if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
            raise ValueError(f"{OVERLAY}={overlay}: expected a mapping of checkpoint names to entries")
        catalogue = deep_merge(catalogue, extra)
    return catalogue


def checkpoint(name: str, path: Path = CATALOGUE) -> dict:
    """The catalogue's entry for ``name`` as written (``path`` relative to the checkout)."""
    catalogue = entries(path)
    if name not in catalogue:
        raise ValueError(f"unknown checkpoint {name!r}; valid: {', '.join(sorted(catalogue))}")
    return catalogue[name]


def resolve(name: str, path: Path = CATALOGUE) -> dict:
    """``name``'s entry ready for a loader: ``name``, ``path`` made absolute (shipped files), and ``needs`` as a
    mapping from each dependency's name to its resolved entry."""
    entry = dict(checkpoint(name, path))
    entry["name"] = name
    if "path" in entry:
        entry["path"] = ROOT / entry["path"]
    entry["needs"] = {dep: resolve(dep, path) for dep in entry.get("needs", [])}
    return entry


def trained_by(module: str, path: Path = CATALOGUE) -> list[str]:
    """The shipped (pinned) checkpoints that the training module ``module`` produces, e.g. every pixel DDPM
    (``ipbench.training.pixel_ddpm``): what loads, gates and draws a checkpoint follows from how it was made,
    not from its name."""
    return sorted(n for n, e in entries(path).items() if "path" in e and e.get("train", {}).get("module") == module)


def fetched_names(name: str, path: Path = CATALOGUE) -> list[str]:
    """The entries with files to download behind ``name`` (itself, and what it ``needs``): the fetch stage's
    jobs for it (none for shipped weights)."""
    entry = checkpoint(name, path)
    own = [name] if "files" in entry and ("hub" in entry or "url" in entry or "manual" in entry) else []
    return own + [n for dep in entry.get("needs", []) for n in fetched_names(dep, path) if n not in own]


def prior_files(name: str, path: Path = CATALOGUE) -> list[str]:
    """The shipped weight files a prior reads (inputs of the solve jobs), empty for fetched ones."""
    try:
        entry = checkpoint(name, path)
    except ValueError:                       # a composite paper prior (e.g. sdxl_dmd2): fetched, not shipped
        return []
    files = [entry["path"]] if "path" in entry else []
    for dep in entry.get("needs", []):
        files += prior_files(dep, path)
    return files


def pin(locked: dict, path: Path = CATALOGUE, names: list[str] | None = None) -> dict:
    """Write what a run's lock file recorded into the catalogue itself, deliberately (``python -m ipbench pin``,
    then commit): each fetched hub entry's branch ``revision`` becomes the commit it was fetched at, and a
    ``sha256`` mapping of its files is added; url entries get the mapping. The file is edited line by line, so
    its comments and order stay. An entry already pinned to other hashes is an error, not overwritten. Returns
    {name: what was pinned}."""
    lines, catalogue, spans = _blocks(path)
    unknown = sorted(set(names or []) - set(catalogue))
    if unknown:
        raise ValueError(f"unknown checkpoint(s) {', '.join(unknown)}; valid: {', '.join(sorted(catalogue))}")
    expected, done, out = copy.deepcopy(catalogue), {}, lines[:min(s for s, _ in spans.values())]
    for name, (start, end) in spans.items():
        block, entry = lines[start:end], catalogue[name]
        if "files" not in entry or (names and name not in names):
            out += block
            continue
        pinned = {}
        branch = str(entry.get("revision", "main"))
        commit = locked.get(f"{name}@{branch}") if "hub" in entry else None
        if commit and commit != branch:
            block = [f"  revision: '{commit}'   # {branch} when pinned\n" if line.startswith("  revision:") else line
                     for line in block]
            expected[name]["revision"] = pinned["revision"] = commit
        hashes = {f: locked.get(f"{name}/{f}") for f in entry["files"]}
        if all(hashes.values()):
            old = entry.get("sha256") or {}
            clash = {f: (old[f], h) for f, h in hashes.items() if f in old and old[f] != h}
            if clash:
                raise ValueError(f"{name}: the catalogue pins other sha256s than the lock recorded: {clash}")
            if not old:
                body = _body_end(block)
                block[body:body] = ["  sha256:\n"] + [f"    {f}: '{h}'\n" for f, h in hashes.items()]
                expected[name]["sha256"] = pinned["sha256"] = hashes
        if pinned:
            done[name] = pinned
        out += block
    if done:
        _write_checked(path, lines, out, expected, "pinning")
    return done


def set_entry(name: str, entry: dict, path: Path = CATALOGUE) -> None:
    """Replace one entry of the catalogue (or add it after the last shipped one), line by line: every other
    entry, the comments and the order stay (``python -m ipbench.training.install``)."""
    lines, catalogue, spans = _blocks(path)
    rendered = yaml.safe_dump({name: entry}, sort_keys=False, width=120).splitlines(keepends=True)
    shipped = [n for n in spans if "path" in catalogue[n]]
    if name in spans:
        start, end = spans[name]
        block = lines[start:end]
        out = lines[:start] + rendered + block[_body_end(block):] + lines[end:]
    else:
        if shipped:
            start, end = spans[shipped[-1]]
            at = start + _body_end(lines[start:end])
        else:
            at = min(s for s, _ in spans.values())
        out = lines[:at] + rendered + lines[at:]
    _write_checked(path, lines, out, {**catalogue, name: entry}, "installing " + name)


def _blocks(path: Path) -> tuple[list[str], dict, dict[str, tuple[int, int]]]:
    """The catalogue's lines, its parsed content and, per top-level entry in file order, the lines it spans
    (start, end)."""
    import re
    text = Path(path).read_text()
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"[A-Za-z0-9_]+:\s*$", line)]
    spans = {lines[s].split(":")[0]: (s, e) for s, e in zip(starts, starts[1:] + [len(lines)])}
    return lines, yaml.safe_load(text), spans


def _body_end(block: list[str]) -> int:
    """Where an entry's own lines end: blank and comment lines at its end belong to the next entry."""
    body = len(block)
    while body > 1 and (not block[body - 1].strip() or block[body - 1].startswith("#")):
        body -= 1
    return body


def _write_checked(path: Path, lines: list[str], out: list[str], expected: dict, what: str) -> None:
    """Write ``out`` atomically if it parses to ``expected`` and keeps every comment line of ``lines``."""
    new = "".join(out)
    comments = [line for line in lines if line.lstrip().startswith("#")]
    kept = [line for line in out if line.lstrip().startswith("#")]
    if yaml.safe_load(new) != expected or [c for c in comments if c not in kept]:
        raise RuntimeError(f"{what} would change {path} beyond its entry: nothing written")
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
