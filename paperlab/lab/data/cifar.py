"""CIFAR-10 and CIFAR-100, "python version": the official archive downloaded with a SHA-256 check and
extracted into the cache, or a folder in the official layout named by --data-dir. Batches are unpickled by
a restricted unpickler that builds numpy arrays and nothing else."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperlab.errors import BadInput, PaperlabError


@dataclass(frozen=True)
class CifarSource:
    archive: str
    sha256: str          # of the archive as https://www.cs.toronto.edu/~kriz/ serves it
    folder: str
    train: tuple[str, ...]
    test: str
    meta: str
    labels: str
    names: str
    md5: dict[str, str]  # of the extracted files (the values torchvision checks): tells the official release
    mean: tuple[float, ...]
    std: tuple[float, ...]


SOURCES = {
    "cifar10": CifarSource(
        "cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
        "labels", "label_names",
        {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
         "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
         "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
         "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"},
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": CifarSource(
        "cifar-100-python.tar.gz", "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        "cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names",
        {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
         "meta": "7973b15100ade9c7d40fb424638fde48"},
        (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),  # the CIFAR-100 benchmarks' normalisation
}
BASE_URL = "https://www.cs.toronto.edu/~kriz/"
_NUMPY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
          ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
          ("numpy._core.multiarray", "scalar"),
          ("_codecs", "encode")}  # how Python 3 writes bytes at protocol 2 (re-saved copies)


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to build {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = _ArraysOnly(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PaperlabError(f"{path} is not a CIFAR batch ({exc})") from None
    if not isinstance(data, dict):
        raise PaperlabError(f"{path} is not a CIFAR batch (a {type(data).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _batch(path: Path, source: CifarSource, classes: int) -> tuple[np.ndarray, np.ndarray]:
    data = _unpickle(path)
    x, y = data.get("data"), data.get(source.labels)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise PaperlabError(f"{path}: 'data' is not an N x 3072 uint8 array")
    y = np.asarray(y if y is not None else [], dtype=np.int64)
    if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() >= classes)):
        raise PaperlabError(f"{path}: '{source.labels}' does not hold one label in 0..{classes - 1} per image")
    return x.reshape(-1, 3, 32, 32), y


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(name: str, source: CifarSource, cache: Path) -> None:
    from paperlab.lab.data.fetch import fetch, mirrors

    archive = cache / source.archive
    error = fetch(mirrors((BASE_URL,)), source.archive, archive, source.sha256)
    if error:
        raise PaperlabError(
            f"{name} is not on this machine and could not be downloaded ({error}); "
            f"download {BASE_URL}{source.archive}, extract it and pass --data-dir FOLDER (holding {source.folder}/), "
            f"or set PAPERLAB_DATA_DIR")
    wanted = {f"{source.folder}/{f}" for f in (*source.train, source.test, source.meta)}
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name in wanted and m.isfile()]
        tar.extractall(cache, members=members, filter="data")
    archive.unlink()


def folder_for(name: str, data_dir: Path | None, cache: Path, download: bool) -> Path:
    source = SOURCES[name]
    needed = (*source.train, source.test, source.meta)
    if data_dir is not None:
        for candidate in (data_dir / source.folder, data_dir):
            if all((candidate / f).is_file() for f in needed):
                return candidate
        raise BadInput(f"{data_dir} does not hold {source.folder}/ with {', '.join(needed)} (the official "
                       f"'python version' layout of {name})")
    folder = cache / name / source.folder
    if not all((folder / f).is_file() for f in needed):
        if not download:
            raise PaperlabError(f"{name} is not in {folder}")
        _download(name, source, cache / name)
    return folder


def read(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], str | None]:
    """Train and test images (uint8, N x 3 x 32 x 32), labels, class names, and a note when the copy is not
    the official release."""
    source = SOURCES[name]
    meta = _unpickle(folder / source.meta)
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(source.names, []))
    classes = 100 if name == "cifar100" else 10
    if len(names) != classes:
        raise PaperlabError(f"{folder / source.meta}: expected {classes} names under '{source.names}'")
    parts = [_batch(folder / f, source, classes) for f in source.train]
    x_train, y_train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x_test, y_test = _batch(folder / source.test, source, classes)
    official = all(_md5(folder / f) == digest for f, digest in source.md5.items())
    note = None if official else (f"{folder} is not the official {name} release ({len(x_train)} training and "
                                  f"{len(x_test)} test images); its checksum is recorded with the runs")
    return x_train, y_train, x_test, y_test, names, note
