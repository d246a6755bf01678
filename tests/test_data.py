"""The embedded digits, the download-and-verify code (against a local stand-in) and the paper loaders."""
import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

import ipbench.datasets.embedded as embedded
from ipbench.datasets import caption, digits, split_indices
from ipbench.datasets.fetch import Lock, fetch, resource_url
from ipbench.datasets.paper import load_clips, load_images
from ipbench.store.files import ChecksumError


def test_split_is_fixed_stratified_and_disjoint():
    train, test = split_indices("train"), split_indices("test")
    assert len(train) == 4000 and len(test) == 1000 and not set(train) & set(test)
    _, labels = embedded.load_digits()
    assert np.bincount(labels[test]).tolist() == [100] * 10
    # pinned: a change of the split would silently change every number of the suite
    assert hashlib.sha256(test.tobytes()).hexdigest()[:16] == PINNED_TEST_SPLIT
    with pytest.raises(ValueError, match="valid: 'train', 'test'"):
        split_indices("val")


PINNED_TEST_SPLIT = "90cfdd5bf635733e"


def test_every_prefix_of_test_images_is_class_balanced():
    """The file is sorted by class: without interleaving, the first 100 test digits would all be zeros."""
    _, labels = digits("test", 32, 10)
    assert labels.tolist() == list(range(10))
    _, labels = digits("test", 32, 100)
    assert np.bincount(labels.numpy()).tolist() == [10] * 10
    _, l_all = digits("test", 32, 1000)
    _, l_idx = digits("test", 32)
    assert sorted(l_all.tolist()) == sorted(l_idx.tolist())       # the same set, another order


def test_images_sizes_range_and_captions():
    x32, l32 = digits("test", 32, 10)
    x64, l64 = digits("test", 64, 10)
    assert x32.shape == (10, 1, 32, 32) and x64.shape == (10, 1, 64, 64)
    assert torch.equal(l32, l64) and x32.min() >= 0 and x32.max() <= 1
    assert x32[..., :2, :].abs().sum() == 0                     # zero padding of the 28 x 28 digits
    assert caption(7) == "a photo of a handwritten digit seven"
    with pytest.raises(ValueError, match="valid sizes"):
        digits("test", 48)


def test_corrupt_bundled_digits_are_refused(monkeypatch):
    embedded.load_digits.cache_clear()
    monkeypatch.setattr(embedded, "MNIST_5K_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="checksum mismatch for .*mnist_5k.csv.gz: expected sha256 0000"):
        embedded.load_digits()
    embedded.load_digits.cache_clear()


@pytest.fixture
def remote(tmp_path):
    """A local folder standing in for the remote, with one file."""
    root = tmp_path / "remote"
    root.mkdir()
    (root / "data.bin").write_bytes(b"payload " * 100)
    return root


def test_fetch_records_then_verifies(remote, tmp_path):
    lock = Lock(tmp_path / "checksums.lock")
    res = {"url": (remote / "data.bin").as_uri()}
    path = fetch("thing", res, tmp_path / "res", lock)
    digest = hashlib.sha256(b"payload " * 100).hexdigest()
    assert path.read_bytes() == b"payload " * 100
    assert Lock(tmp_path / "checksums.lock").get("thing") == digest       # recorded on first use
    assert fetch("thing", res, tmp_path / "res", lock) == path             # verified on later use
    path.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match=f"expected sha256 {digest}"):
        fetch("thing", res, tmp_path / "res", lock)


def test_fetch_pinned_hash_mismatch_keeps_nothing_half_written(remote, tmp_path):
    res = {"url": (remote / "data.bin").as_uri(), "sha256": "f" * 64}
    with pytest.raises(ChecksumError, match="data.bin"):
        fetch("thing", res, tmp_path / "res", Lock(tmp_path / "l.lock"))
    assert not list((tmp_path / "res" / "thing").glob("*.part"))


def test_fetch_manual_and_unreachable(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs a login.*Place the file at"):
        fetch("imagenet", {"filename": "val.tar", "manual": "It needs a login."}, tmp_path, Lock(tmp_path / "l"))
    with pytest.raises(ConnectionError, match="could not download"):
        fetch("gone", {"url": (tmp_path / "nope.bin").as_uri()}, tmp_path, Lock(tmp_path / "l"))


def test_fetch_from_a_local_hub(remote, tmp_path):
    """The hub's download route, served on loopback from a folder laid out like the hub."""
    hub = tmp_path / "hub"
    (hub / "datasets/owner/set/resolve/v1.0/sub").mkdir(parents=True)
    (hub / "datasets/owner/set/resolve/v1.0/sub/data.bin").write_bytes(b"hub bytes")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(hub))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        res = {"hub": "owner/set", "repo_type": "dataset", "file": "sub/data.bin", "revision": "v1.0"}
        assert resource_url(res, endpoint) == f"{endpoint}/datasets/owner/set/resolve/v1.0/sub/data.bin"
        path = fetch("set", res, tmp_path / "res", Lock(tmp_path / "l"), endpoint=endpoint)
        assert path.read_bytes() == b"hub bytes"
    finally:
        server.shutdown()


def test_paper_loaders_zip_and_idx(tmp_path):
    archive = tmp_path / "afhq.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for split, k in [("val", 3), ("train", 2)]:
            for i in range(k):
                buf = io.BytesIO()
                Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(buf, "PNG")
                z.writestr(f"afhq/{split}/cat/{i}.png", buf.getvalue())
    x = load_images({"members": ["afhq/val/cat/*.png"], "image_size": 16}, archive, 3)
    assert x.shape == (3, 3, 16, 16) and torch.allclose(x[2], torch.full_like(x[2], 80 / 255), atol=1e-6)
    with pytest.raises(ValueError, match="holds 3"):
        load_images({"members": ["afhq/val/cat/*.png"], "image_size": 16}, archive, 5)
    idx = tmp_path / "t10k.gz"
    header = np.array([2051, 2, 28, 28], dtype=">i4").tobytes()
    idx.write_bytes(gzip.compress(header + bytes(range(256)) * 6 + bytes(1568 - 1536)))
    m = load_images({"format": "idx", "image_size": 32}, idx, 2)
    assert m.shape == (2, 1, 32, 32) and m[0, 0, 2, 3] == pytest.approx(1 / 255)


def test_a_paper_dataset_is_checked_every_time_it_is_read(tmp_path):
    """The degrade stage checks a paper dataset file before reading it: the first use records its sha256 in the
    lock file, a later change (a corrupt or swapped file) is refused naming it, and an unreadable file is named."""
    from ipbench.store.files import ChecksumError
    from ipbench.suite import stages
    idx = tmp_path / "t10k.gz"
    header = np.array([2051, 4, 28, 28], dtype=">i4").tobytes()
    idx.write_bytes(gzip.compress(header + bytes(range(256)) * 12 + bytes(4 * 784 - 3072)))
    spec = {"profile": "p", "task": "mnist_sr", "n_images": 2, "data": {"kind": "paper_datasets"},
            "task_spec": {"image_size": 32, "sigma_y": 0.01, "operator": {"name": "downsampling", "factor": 2}},
            "dataset": {"key": "mnist_test", "source": {"url": "http://x/t10k.gz"}, "format": "idx", "image_size": 32}}
    lock = tmp_path / "checksums.lock"
    stages.degrade(spec, str(tmp_path / "a.safetensors"), str(idx), str(lock))
    assert json.loads(lock.read_text())["mnist_test"] == hashlib.sha256(idx.read_bytes()).hexdigest()
    idx.write_bytes(gzip.compress(header + bytes(4 * 784)))               # swapped after the first use
    with pytest.raises(ChecksumError, match=f"checksum mismatch for {idx} \\(mnist_test\\)"):
        stages.degrade(spec, str(tmp_path / "b.safetensors"), str(idx), str(lock))
    assert not (tmp_path / "b.safetensors").exists()
    garbage = tmp_path / "g.gz"
    garbage.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=f"could not read the images of other from {garbage}"):
        stages.degrade({**spec, "dataset": {**spec["dataset"], "key": "other"}}, str(tmp_path / "c.safetensors"),
                       str(garbage), str(lock))


def test_paper_video_recipe_cuts_each_video_into_clips_of_consecutive_frames(tmp_path):
    """A stand-in of Adobe240's layout ({train,test}/<video>/<frame>): two test videos of 7 and 5 frames, numbered
    so that text order is not frame order; each frame's grey level encodes (video, frame)."""
    archive = tmp_path / "adobe240.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for video, n_frames in [(2, 7), (10, 5)]:
            for f in range(n_frames):
                buf = io.BytesIO()
                Image.fromarray(np.full((6, 10, 3), 20 * (video == 10) + 2 * f, np.uint8)).save(buf, "PNG")
                z.writestr(f"adobe240/test/{video}/{8 + f}.png", buf.getvalue())
        z.writestr("adobe240/train/1/8.png", buf.getvalue())
    recipe = {"members": ["adobe240/test/*/*.png"], "frame_size": [4, 8], "image_size": 4}
    x = load_clips(recipe, archive, 3, 3)
    assert x.shape == (3, 3, 3, 4, 8)
    levels = (x[:, :, 0, 0, 0] * 255).round().tolist()
    assert levels == [[0, 2, 4], [6, 8, 10], [20, 22, 24]]     # video 2: frames 8-10, 11-13; video 10: 8-10
    with pytest.raises(ValueError, match="hold 3"):
        load_clips(recipe, archive, 4, 3)
