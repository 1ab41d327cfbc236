import gzip
import struct

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


def test_download_without_network_is_one_clear_line(tmp_path):
    # No network here: the real torchvision download code runs and fails; the error says what to do.
    with pytest.raises(LbhError) as err:
        prepare("mnist", tmp_path / "mnist.pt", download_root=tmp_path)
    msg = str(err.value)
    assert "dataset mnist" in msg and "data.local_dirs.mnist" in msg and "\n" not in msg


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
