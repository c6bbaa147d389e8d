"""The dataset cache: hits, invalidation when the source changes, atomic and self-healing files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import make_ckplus48, make_ferplus, write

from fer_edge.data import cache, load_dataset, prepare
from fer_edge.data.ckplus48 import CkPlus48Layout
from fer_edge.errors import DataError


def counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every real read of the ckplus48 layout."""
    reads: list[Path] = []
    original = CkPlus48Layout.read

    def read(self, path, strict=False, progress=None):  # type: ignore[no-untyped-def]
        reads.append(path)
        return original(self, path, strict=strict, progress=progress)

    monkeypatch.setattr(CkPlus48Layout, "read", read)
    return reads


def assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.name == b.name and a.classes == b.classes and a.problems == b.problems
    for col in ("images", "labels", "soft", "subjects", "split", "files"):
        x, y = getattr(a, col), getattr(b, col)
        assert (x is None) == (y is None), col
        if x is not None:
            assert np.array_equal(x, y), col


def test_second_load_is_a_hit_and_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            isolated_cache: Path) -> None:
    root = make_ckplus48(tmp_path / "ck")
    reads = counting(monkeypatch)
    first = load_dataset(root)
    second = load_dataset(root)
    assert len(reads) == 1
    assert_same(first, second)
    assert [p.suffix for p in isolated_cache.iterdir()] == [".npz"]


def test_soft_and_split_survive_the_cache(tmp_path: Path) -> None:
    root = make_ferplus(tmp_path / "fp")
    load_dataset(root)
    hit = load_dataset(root)
    assert hit.soft is not None and hit.split is not None and hit.soft.dtype == np.float32
    assert_same(load_dataset(root, cache=False), hit)


def test_invalidated_when_a_file_changes_is_added_or_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             isolated_cache: Path) -> None:
    root = make_ckplus48(tmp_path / "ck")
    reads = counting(monkeypatch)
    assert len(load_dataset(root)) == 63
    victim = root / "anger" / "S010_001_00000017.png"
    os.utime(victim, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # touched
    load_dataset(root)
    write(root / "fear" / "S099_001_00000001.png", np.zeros((48, 48), np.uint8))  # added
    assert len(load_dataset(root)) == 64
    victim.unlink()  # removed
    assert len(load_dataset(root)) == 63
    assert len(reads) == 4
    assert len(list(isolated_cache.glob("*.npz"))) == 1  # stale states are removed


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           isolated_cache: Path) -> None:
    root = make_ckplus48(tmp_path / "ck")
    reads = counting(monkeypatch)
    load_dataset(root, cache=False)
    load_dataset(root, cache=False)
    assert len(reads) == 2 and not list(isolated_cache.iterdir())


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_ckplus48(tmp_path / "ck")
    _, target, fresh = prepare(root)
    assert fresh and target.is_file()
    target.write_bytes(target.read_bytes()[:1000])  # truncated
    reads = counting(monkeypatch)
    assert len(load_dataset(root)) == 63 and len(reads) == 1
    assert cache.load(target) is not None
    assert prepare(root)[2] is False and prepare(root, force=True)[2] is True


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           isolated_cache: Path) -> None:
    root = make_ckplus48(tmp_path / "ck")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    ds = load_dataset(root)  # the dataset is still returned, the failure noted
    assert any("cache not written" in p for p in ds.problems)
    assert not list(isolated_cache.iterdir())  # no partial file, no temp file left


def test_strict_rereads_a_cache_that_skipped_images(tmp_path: Path) -> None:
    root = make_ckplus48(tmp_path / "ck")
    (root / "anger" / "S010_001_00000017.png").write_bytes(b"junk")
    assert len(load_dataset(root)) == 62
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset(root, strict=True)


def test_key_depends_on_path_layout_options_and_version(tmp_path: Path) -> None:
    from fer_edge.data.imagefolder import ImageFolderLayout

    a = make_ckplus48(tmp_path / "a")
    b = make_ckplus48(tmp_path / "b")
    layout = CkPlus48Layout()
    assert cache.cache_file(layout, a) != cache.cache_file(layout, b)
    assert cache.cache_file(layout, a) == cache.cache_file(CkPlus48Layout(), a)
    assert cache.cache_file(ImageFolderLayout(), a) != cache.cache_file(ImageFolderLayout(size=(32, 32)), a)

    class Newer(CkPlus48Layout):
        version = CkPlus48Layout.version + 1

    assert cache.cache_file(Newer(), a) != cache.cache_file(layout, a)


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "here"))
    assert cache.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("FER_EDGE_CACHE")
    assert cache.cache_dir() == Path.home() / ".cache" / "fer-edge"


def test_csv_pair_cache_follows_both_files(tmp_path: Path) -> None:
    from helpers.datasets import make_ferplus_csv

    root = make_ferplus_csv(tmp_path / "csv")
    new = root / "fer2013new.csv"
    assert load_dataset(new).labels.tolist() == [0, 1, 7, -1, -1]
    old = root / "fer2013.csv"
    lines = old.read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + "," + " ".join(["7"] * 2304) + ",Training"  # first face changed
    old.write_text("\n".join(lines) + "\n")
    assert int(load_dataset(new).images[0].max()) == 7  # fer2013.csv changed: not a stale hit
