"""Fetching remote files (paper datasets, checkpoints) with sha256 verification and a lock file.

A resource is ``{'url': ...}`` or ``{'hub': 'owner/name', 'file': ..., 'revision': ..., 'repo_type':
'model' | 'dataset'}`` (resolved to ``{endpoint}/[datasets/]{hub}/resolve/{revision}/{file}``, the
hub's plain download route), or ``{'manual': 'instructions'}`` for files that need a licence or a
login and must be placed by hand. The sha256 is pinned in the config where it can be known;
otherwise the first fetch records it in the lock file and every later use is checked against it.
A mismatch stops with an error that names the file and both hashes; a hash is never invented.
The lock file lives under ``resources/`` (not tracked); compute jobs run with ``IPBENCH_OFFLINE=1`` and never
download: the fetch stage has placed every file before them.
"""
from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ipbench.store.files import ChecksumError, sha256_of

DEFAULT_ENDPOINT = "https://huggingface.co"


# beside the files it locks, under the run's working directory (resources/, which git ignores in a checkout): a run
# never makes the checkout dirty, and a run elsewhere (a test's stand-in hub) never writes into the checkout's lock
DEFAULT_LOCK = Path("resources") / "checksums.lock"
OFFLINE = "IPBENCH_OFFLINE"         # set in compute jobs: what is missing is an error, not a download


def offline() -> bool:
    return os.environ.get(OFFLINE, "") not in ("", "0")


class Lock:
    """A JSON map key -> sha256 (or ``name@revision`` -> commit) of what was fetched. ``record`` re-reads the
    file and replaces it atomically under an exclusive file lock, so parallel jobs never lose an entry."""

    def __init__(self, path: str | os.PathLike = DEFAULT_LOCK):
        self.path = Path(path)
        self.entries = self._read()

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def record(self, key: str, value: str) -> None:
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".flock"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            self.entries = {**self._read(), key: value}
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(dict(sorted(self.entries.items())), indent=1) + "\n")
            os.replace(tmp, self.path)


def resource_url(res: dict, endpoint: str | None = None) -> str:
    if "url" in res:
        return res["url"]
    if "hub" in res:
        endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[res.get("repo_type", "model")]
        revision = urllib.parse.quote(res.get("revision", "main"), safe="")
        return f"{endpoint}/{prefix}{res['hub']}/resolve/{revision}/{urllib.parse.quote(res['file'])}"
    raise ValueError(f"resource has neither 'url' nor 'hub': {res}")


def local_name(res: dict) -> str:
    if "file" in res:
        return Path(res["file"]).name
    if "filename" in res:
        return res["filename"]
    return Path(urllib.parse.urlparse(res.get("url", "")).path).name or "download"


def _download(url: str, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch(key: str, res: dict, dest_dir: str | os.PathLike, lock: Lock, endpoint: str | None = None,
          path: str | None = None) -> Path:
    """Return the verified local path of resource ``key`` (``dest_dir/key/<file name>``, or
    ``dest_dir/path`` when given), downloading it first if it is absent."""
    dest = Path(dest_dir) / (path if path is not None else Path(key) / local_name(res))
    if res.get("sha256") and lock.get(key) and res["sha256"] != lock.get(key):
        raise ChecksumError(f"{key}: the pinned sha256 {res['sha256']} differs from the lock file's {lock.get(key)}")
    if not dest.exists():
        if offline():
            raise FileNotFoundError(f"{key}: {dest} is missing, and this job runs offline: files are fetched by "
                                    "the fetch stage before any compute job (its rules fetch_dataset and "
                                    "fetch_checkpoint); run the same target again, or fetch it by hand")
        if "manual" in res:
            raise FileNotFoundError(f"{key}: {dest} is missing and cannot be downloaded automatically. "
                                    f"{res['manual']} Place the file at {dest}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = resource_url(res, endpoint)
        try:
            _download(url, dest)
        except OSError as err:
            raise ConnectionError(f"{key}: could not download {url}: {err}") from None
    return verify(key, res, dest, lock)


def verify(key: str, res: dict, path: str | os.PathLike, lock: Lock) -> Path:
    """Check a local file of resource ``key`` against its pinned sha256, or the one the lock file recorded when
    it was first fetched (recording it now if there is neither): on every use, not only on download, so a
    hand-placed or later-damaged file is caught before it is read."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{key}: no file at {path}")
    expected = res.get("sha256") or lock.get(key)
    if res.get("sha256") and lock.get(key) and res["sha256"] != lock.get(key):
        raise ChecksumError(f"{key}: the pinned sha256 {res['sha256']} differs from the lock file's {lock.get(key)}")
    got = sha256_of(path)
    if expected is None:
        lock.record(key, got)
    elif got != expected:
        raise ChecksumError(f"checksum mismatch for {path} ({key}): expected sha256 {expected}, got {got}. "
                            "Delete the file to fetch it again, or check the source.")
    return path

