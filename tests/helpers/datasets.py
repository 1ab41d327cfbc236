"""Small local copies of MNIST, CIFAR-10 and CIFAR-100 in the formats torchvision reads (idx files; the
python-pickle batches), written by tests: the offline path of data.local_dirs with data.checksums."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from lbhessian.core.checksums import md5_of


def _images(n, shape, classes, seed):
    """uint8 images whose mean brightness follows the label (learnable), and labels covering every class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    base = (labels * (200 // classes + 1)) % 200
    noise = rng.integers(0, 56, size=(n, *shape))
    return (base.reshape(-1, *[1] * len(shape)) + noise).astype(np.uint8), labels


def _idx(path, array, gz):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def write_mnist(directory, n_train, n_test, gz=False, seed=0):
    """MNIST's four idx files in ``directory``; returns {file name: md5} (data.checksums.mnist)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = _images(n, (28, 28), 10, seed + (prefix == "t10k"))
        for kind, array in (("images-idx3-ubyte", x), ("labels-idx1-ubyte", y)):
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            _idx(directory / name, array, gz)
            names[name] = md5_of(directory / name)
    return names


def write_cifar(directory, classes, n_train, n_test, seed=0):
    """CIFAR-10 (``classes`` 10: cifar-10-batches-py, five training batches) or CIFAR-100 (100:
    cifar-100-python) pickle batches in ``directory``; returns {path inside it: md5} (data.checksums)."""
    directory = Path(directory)
    folder, key = ("cifar-10-batches-py", "labels") if classes == 10 else ("cifar-100-python", "fine_labels")
    (directory / folder).mkdir(parents=True, exist_ok=True)
    x, y = _images(n_train + n_test, (3 * 32 * 32,), classes, seed)
    if classes == 10:
        parts = np.array_split(np.arange(n_train), 5)
        files = {f"data_batch_{i + 1}": idx for i, idx in enumerate(parts)}
        files["test_batch"] = np.arange(n_train, n_train + n_test)
        meta = ("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    else:
        files = {"train": np.arange(n_train), "test": np.arange(n_train, n_train + n_test)}
        meta = ("meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    for name, idx in files.items():
        batch = {"data": x[idx], key: y[idx].tolist(), "filenames": [f"{i}.png" for i in idx]}
        (directory / folder / name).write_bytes(pickle.dumps(batch))
    (directory / folder / meta[0]).write_bytes(pickle.dumps(meta[1]))
    return {f"{folder}/{p.name}": md5_of(p) for p in sorted((directory / folder).iterdir())}
