"""MD5 checksums of a data set's local files: the ones a user states (data.checksums.<dataset>) or torchvision's
published ones, checked file by file so that a copy that differs fails with one line naming the file."""

import hashlib

from lbhessian.core.errors import LbhError


def md5_of(path):
    """The MD5 checksum of a file, as torchvision and `md5sum` write it."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def published(cls):
    """torchvision's published MD5s of a torchvision data set class's files, by path inside its folder."""
    if hasattr(cls, "resources"):
        return dict(cls.resources)
    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    return {f"{cls.base_folder}/{f}": md5 for f, md5 in files}


def check_files(name, directory, used, stated, published_md5):
    """Check the files the loader reads (``used``, paths inside ``directory``) against the checksums the user
    stated (data.checksums.<name>: every file read must be there) or else the published ones (files that have
    one). One line naming the file for a missing or different one."""
    for rel in dict.fromkeys([*used, *(stated or {})]):
        path = directory / rel
        if stated:
            if rel not in stated:
                raise LbhError(f"data.checksums.{name}: no checksum for {path} (state one for every file it reads)")
            if not path.is_file():
                raise LbhError(f"data.checksums.{name}: {path} is missing")
            want, source = stated[rel], f"data.checksums.{name}"
        elif rel in published_md5 and path.is_file():
            want, source = published_md5[rel], "torchvision's published checksum"
        else:
            continue  # torchvision reports a missing file itself
        got = md5_of(path)
        if got != want:
            raise LbhError(f"{path}: MD5 {got} differs from {want} ({source}): a corrupt or different copy")
