import errno
import functools
import gzip
import hashlib
import http.server
import pickle
import socket
import struct
import threading

import numpy as np
import pytest
import torch

from lbhessian.core.data import augment, load_prepared, prepare, read_idx
from lbhessian.core.errors import LbhError


def test_mnist5k_prepared_shapes_dtypes_and_labels(mnist5k):
    train, test, info = mnist5k
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == torch.uint8 and train.y.dtype == torch.int64
    assert info["classes"] == 10 and info["shape"] == [1, 28, 28]
    # The fixed shuffle gives every class in both splits, about 500 each in total.
    counts = torch.bincount(torch.cat([train.y, test.y]), minlength=10)
    assert counts.sum() == 5000 and counts.min() >= 400
    assert torch.bincount(test.y, minlength=10).min() > 50
    x = train.x_float()
    assert x.min() == 0.0 and x.max() == 1.0
    assert abs(info["mean"][0] - x.mean().item()) < 1e-4


def test_digits_split(tmp_path):
    train, test, info = load_prepared(prepare("digits", tmp_path / "digits.pt"))
    assert len(train) + len(test) == 1797 and info["shape"] == [1, 8, 8]
    assert int(train.x.max()) == 255


def _write_idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def _fake_idx_dir(d, n_train=60, n_test=20):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_local_idx_directory(tmp_path):
    src = tmp_path / "fmnist"
    src.mkdir()
    _fake_idx_dir(src)
    train, test, info = load_prepared(prepare("fashion_mnist", tmp_path / "fm.pt", str(src)))
    assert train.x.shape == (60, 1, 28, 28) and len(test) == 20
    assert torch.equal(train.y, torch.arange(60) % 10)
    assert torch.equal(train.x[3, 0], torch.from_numpy(read_idx(src / "train-images-idx3-ubyte.gz")[3]))


def test_truncated_idx_file_names_the_file(tmp_path):
    src = tmp_path / "m"
    src.mkdir()
    _fake_idx_dir(src)
    raw = gzip.decompress((src / "train-images-idx3-ubyte.gz").read_bytes())
    (src / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(LbhError, match="train-images-idx3-ubyte.gz: not a valid idx file"):
        prepare("mnist", tmp_path / "mnist.pt", str(src))


def test_missing_local_dir_and_unknown_dataset(tmp_path):
    with pytest.raises(LbhError, match=r"data.local_dirs.mnist: .* is not a directory"):
        prepare("mnist", tmp_path / "mnist.pt", str(tmp_path / "absent"))
    with pytest.raises(LbhError, match="dataset 'imagenet' is unknown; known: cifar10"):
        prepare("imagenet", tmp_path / "x.pt")


def _no_network(monkeypatch):
    """Every new connection fails as on a machine without network (urllib connects through this function)."""

    def unreachable(*args, **kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)


def test_download_without_network_is_one_clear_line(tmp_path, monkeypatch):
    """The failure is forced here, so the test passes with or without network: the real torchvision download
    code runs and every connection fails. Catches a raw RuntimeError/URLError traceback reaching the user and a
    message that does not say what to do (data.local_dirs) or spans several lines."""
    _no_network(monkeypatch)
    with pytest.raises(LbhError) as err:
        prepare("mnist", tmp_path / "mnist.pt", download_root=tmp_path)
    msg = str(err.value)
    assert "dataset mnist" in msg and "data.local_dirs.mnist" in msg and "\n" not in msg
    assert not (tmp_path / "mnist.pt").exists()


@pytest.fixture
def mnist_mirror(tmp_path, monkeypatch):
    """A reachable network, simulated: an HTTP server on 127.0.0.1 serving small MNIST-format .gz files, set as
    torchvision's only MNIST mirror, with torchvision's checksum list replaced by the served files' MD5s."""
    import torchvision

    served = tmp_path / "served"
    served.mkdir()
    _fake_idx_dir(served, n_train=50, n_test=30)
    resources = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(served.iterdir())]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    yield served
    server.shutdown()
    server.server_close()


def test_download_through_a_reachable_mirror_succeeds(tmp_path, mnist_mirror):
    """With a reachable mirror the real download path (torchvision: fetch, MD5 check, unpack) prepares the data.

    Catches a download path that never runs (e.g. download=False) and wrong train/test assignment."""
    out = prepare("mnist", tmp_path / "mnist.pt", download_root=tmp_path / "dl")
    train, test, info = load_prepared(out)
    assert len(train) == 50 and len(test) == 30 and info["classes"] == 10
    assert torch.equal(train.y, torch.arange(50) % 10)
    expected = read_idx(mnist_mirror / "t10k-images-idx3-ubyte.gz")
    assert torch.equal(test.x[:, 0], torch.from_numpy(expected))


def test_forced_failure_holds_while_a_mirror_is_reachable(tmp_path, mnist_mirror, monkeypatch):
    """The forced no-network failure does not depend on the machine: even with a working mirror it fails with the
    one-line message (so `make test` behaves the same with and without network)."""
    _no_network(monkeypatch)
    with pytest.raises(LbhError, match=r"^dataset mnist: .*data\.local_dirs\.mnist$"):
        prepare("mnist", tmp_path / "mnist.pt", download_root=tmp_path / "dl")


def _fake_cifar10(root, per_batch=6, n_test=8):
    """cifar-10-batches-py as torchvision reads it (python pickles), tiny; returns (train images, labels)."""
    rng = np.random.default_rng(7)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = [], []
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        ys = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": ys, "batch_label": name}, f)
        if name != "test_batch":
            images.append(data)
            labels += ys
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch}, f)
    return np.concatenate(images).reshape(-1, 3, 32, 32), labels


def _trust_files(monkeypatch, folder):
    """Replace torchvision's CIFAR-10 MD5 list by the MD5s of the files the test wrote."""
    import torchvision

    cls = torchvision.datasets.CIFAR10

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(cls, "train_list", [[n, md5(n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(n)] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(cls.meta["filename"])})


def test_cifar10_local_batches_load_with_checksums(tmp_path, monkeypatch):
    """The CIFAR loader on CIFAR-format pickles: NCHW uint8 images equal to the pickled rows, labels in order,
    CIFAR-10 left unnormalised. Catches an NHWC/NCHW mix-up (the transpose) and dropped batches."""
    images, labels = _fake_cifar10(tmp_path / "c10")
    _trust_files(monkeypatch, tmp_path / "c10" / "cifar-10-batches-py")
    train, test, info = load_prepared(prepare("cifar10", tmp_path / "c10.pt", str(tmp_path / "c10")))
    assert train.x.shape == (30, 3, 32, 32) and test.x.shape == (8, 3, 32, 32) and info["classes"] == 10
    assert torch.equal(train.x, torch.from_numpy(images)) and train.y.tolist() == labels
    assert info["mean"] == [0.0, 0.0, 0.0] and info["std"] == [1.0, 1.0, 1.0]


def test_cifar10_bad_checksum_is_one_line(tmp_path, monkeypatch):
    """One flipped byte in one batch (same size) fails MD5 verification with one LbhError line naming the file;
    files that match no known checksum at all (torchvision's own list) fail the same way.
    Catches checksums not verified (download=False skips nothing) and a raw RuntimeError escaping."""
    _fake_cifar10(tmp_path / "c10")
    folder = tmp_path / "c10" / "cifar-10-batches-py"
    with pytest.raises(LbhError) as own_list:
        prepare("cifar10", tmp_path / "c10.pt", str(tmp_path / "c10"))
    _trust_files(monkeypatch, folder)
    blob = bytearray((folder / "data_batch_3").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / "data_batch_3").write_bytes(bytes(blob))
    with pytest.raises(LbhError) as flipped:
        prepare("cifar10", tmp_path / "c10.pt", str(tmp_path / "c10"))
    # Checked file by file before torchvision reads them: the message names the file that differs.
    for err, name in ((own_list, "data_batch_1"), (flipped, "data_batch_3")):
        msg = str(err.value)
        assert msg.startswith(f"{folder / name}: MD5 ") and "differs from" in msg and "checksum" in msg, msg
        assert "\n" not in msg
    assert not (tmp_path / "c10.pt").exists()


def test_corrupt_or_truncated_prepared_file(tmp_path):
    path = prepare("digits", tmp_path / "digits.pt")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 3])
    with pytest.raises(LbhError, match=r"digits.pt: not a readable prepared dataset"):
        load_prepared(path)
    torch.save({"something": torch.zeros(3)}, path)
    with pytest.raises(LbhError, match=r"digits.pt: not a prepared dataset"):
        load_prepared(path)


def test_augment_is_a_padded_crop_or_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    out = augment(x, g)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(64):
        # Every output image equals some 8x8 window of the padded input, possibly mirrored.
        windows = padded[i].unfold(1, 8, 1).unfold(2, 8, 1).permute(1, 2, 0, 3, 4).reshape(-1, 3, 8, 8)
        match = (windows == out[i]).flatten(1).all(1) | (windows.flip(-1) == out[i]).flatten(1).all(1)
        assert match.any()
    assert not torch.equal(out, x)
