"""Datasets as in-memory arrays: digits (bundled with scikit-learn), mnist and fashion-mnist (IDX files:
a folder you name, Debian's copy, the cache, or a checksummed download), cifar10 and cifar100 (see cifar.py)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperlab.errors import BadInput, PaperlabError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSource:
    mirrors: tuple[str, ...]
    sha256_gz: dict[str, str]  # of the .gz files as the mirrors serve them
    system_dir: str | None
    classes: tuple[str, ...]


SOURCES = {
    "mnist": IdxSource(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        {"train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
         "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
         "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
         "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
        None, tuple(str(d) for d in range(10))),
    "fashion-mnist": IdxSource(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
         "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
         "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
         "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        "/usr/share/datasets/fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
}
NAMES = ("digits", *SOURCES, "cifar10", "cifar100", "folder")  # folder: your images, ImageFolder layout


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # float32, (N, 1, H, W) in [0, 1]
    y_train: np.ndarray  # int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    checksum: str  # sha256 of the arrays, so runs can say exactly what they saw
    origin: str
    mean: tuple[float, ...] = ()  # per channel, for `normalize: true`; () means: measured on x_train
    std: tuple[float, ...] = ()
    note: str | None = None       # e.g. "not the official release"

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.mean:
            return self.mean, self.std
        axes = (0, 2, 3)
        return tuple(self.x_train.mean(axis=axes).tolist()), tuple(self.x_train.std(axis=axes).tolist())


def _checksum(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array, its header checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise PaperlabError(f"{path} is not an unsigned-byte IDX file")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise PaperlabError(f"{path} is truncated: {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _download(name: str, source: IdxSource, target: Path) -> None:
    from paperlab.lab.data.fetch import fetch, mirrors

    for file in FILES:
        final = target / f"{file}.gz"
        error = None if final.exists() else fetch(mirrors(source.mirrors), f"{file}.gz", final, source.sha256_gz[file])
        if error:
            raise PaperlabError(
                f"{name} is not on this machine and could not be downloaded ({error}); "
                f"put the four IDX files in a folder and pass --data-dir, or set PAPERLAB_DATA_DIR"
                + ("; on Debian: apt-get install dataset-fashion-mnist" if source.system_dir else ""))


def _idx_dataset(name: str, data_dir: Path | None, cache: Path, download: bool) -> Dataset:
    source = SOURCES[name]
    folders = [data_dir] if data_dir else [cache / name, *([Path(source.system_dir)] if source.system_dir else [])]
    folder = next((f for f in folders if all(_find(f, n) for n in FILES)), None)
    if folder is None and data_dir is not None:
        missing = [n for n in FILES if not _find(data_dir, n)]
        raise BadInput(f"{data_dir} lacks {', '.join(missing)} (IDX files, optionally .gz) for {name}")
    if folder is None:
        if not download:
            raise PaperlabError(f"{name} is not in {cache / name}")
        _download(name, source, cache / name)
        folder = cache / name
    xtr, ytr, xte, yte = (read_idx(_find(folder, n)) for n in FILES)
    checksum = _checksum(xtr, ytr, xte, yte)
    to_float = lambda x: (x.astype(np.float32) / 255.0)[:, None, :, :]  # noqa: E731
    return Dataset(name, to_float(xtr), ytr.astype(np.int64), to_float(xte), yte.astype(np.int64), source.classes,
                   checksum, str(folder))


def _digits_table() -> np.ndarray:
    """scikit-learn's digits as its 1,797 x 65 table (8x8 pixels 0-16, then the digit), read from the file
    scikit-learn ships without importing scikit-learn (1.5-3 s of every smoke run here); `load_digits`
    where the file is not at its usual place."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    where = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if where is not None and where.is_file():
        with gzip.open(where, "rt") as rows:
            return np.loadtxt(rows, delimiter=",")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.hstack([bunch.data, bunch.target[:, None]])


def _digits() -> Dataset:
    table = _digits_table()
    x = (table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0)[:, None, :, :]
    y = table[:, -1].astype(np.int64)
    cut = 1297  # fixed split: the first 1,297 images train, the last 500 test
    return Dataset("digits", x[:cut], y[:cut], x[cut:], y[cut:], tuple(str(d) for d in range(10)),
                   _checksum(x, y), "scikit-learn load_digits")


def load(name: str, data_dir: Path | None, cache: Path, download: bool = True) -> Dataset:
    if name not in NAMES:
        raise BadInput(f"unknown dataset {name!r} (datasets: {', '.join(NAMES)})")
    if name == "digits":
        return _digits()
    if name == "folder":
        from paperlab.lab.data import folder

        xtr, ytr, xte, yte, classes, note, mean, std = folder.read(data_dir)
        return Dataset("folder", xtr, ytr, xte, yte, classes, _checksum(xtr, ytr, xte, yte), str(data_dir),
                       mean, std, note)
    if name.startswith("cifar"):
        return _cifar(name, data_dir, cache, download)
    return _idx_dataset(name, data_dir, cache, download)


def _cifar(name: str, data_dir: Path | None, cache: Path, download: bool) -> Dataset:
    from paperlab.lab.data import cifar

    folder = cifar.folder_for(name, data_dir, cache, download)
    xtr, ytr, xte, yte, names, note = cifar.read(name, folder)
    source = cifar.SOURCES[name]
    to_float = lambda x: x.astype(np.float32) / 255.0  # noqa: E731
    return Dataset(name, to_float(xtr), ytr, to_float(xte), yte, names, _checksum(xtr, ytr, xte, yte), str(folder),
                   source.mean, source.std, note)


def split_validation(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices, fixed by the seed."""
    if size >= n:
        raise BadInput(f"val_size {size} leaves no training data ({n} examples)")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[size:]), np.sort(order[:size])
