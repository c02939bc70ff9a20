"""The conversion cache: whole entries or none, keyed by the source's checksum, bounded, LRU."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from steadyvoice.storage.conversion_cache import (
    GRACE_SECONDS,
    STALE_TEMP_SECONDS,
    ConversionCache,
    cache_key,
)
from steadyvoice.storage.local import TEMP_PREFIX


def writer(data: bytes) -> Callable[[BinaryIO], None]:
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return write


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_key_depends_on_the_source_checksum_rate_and_tag() -> None:
    key = cache_key("a" * 64, 16_000, "conv1|wav|mp3")
    assert key == cache_key("a" * 64, 16_000, "conv1|wav|mp3")
    assert key != cache_key("b" * 64, 16_000, "conv1|wav|mp3")
    assert key != cache_key("a" * 64, 22_050, "conv1|wav|mp3")
    assert key != cache_key("a" * 64, 16_000, "conv2|wav|mp3")


def test_an_entry_is_put_whole_and_got_back(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "conversions", 1_000)
    assert cache.get("k.mp3") is None
    path = cache.put("k.mp3", writer(b"converted"))
    assert path.read_bytes() == b"converted"
    assert cache.get("k.mp3") == path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["k.mp3"], "no temporary file left"


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 1_000)

    def broken(fh: BinaryIO) -> None:
        fh.write(b"half")
        raise ValueError("decoder gave up")

    with pytest.raises(ValueError, match="decoder gave up"):
        cache.put("k.mp3", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_hit_makes_an_entry_the_most_recently_used(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 250)
    for name in ("a", "b"):
        age(cache.put(name, writer(b"x" * 100)), 2 * GRACE_SECONDS)
    age(tmp_path / "a", 3 * GRACE_SECONDS)  # a is the older ...
    assert cache.get("a") is not None  # ... until it is used again
    age(tmp_path / "a", GRACE_SECONDS + 1)
    cache.put("c", writer(b"x" * 100))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]
    assert cache.total_bytes() <= 250


def test_eviction_removes_the_least_recent_until_it_fits(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 300)
    for i, name in enumerate(("old", "mid", "new")):
        age(cache.put(name, writer(b"x" * 100)), (10 - i) * GRACE_SECONDS)
    cache.put("newest", writer(b"x" * 150))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "newest"]


def test_entries_in_use_are_kept_over_the_bound_for_a_grace_minute(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 100)
    cache.put("a", writer(b"x" * 100))
    cache.put("b", writer(b"x" * 100))
    # "a" was used a moment ago (a download may be opening it): kept, over the bound.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert cache.evict(keep="b", now=time.time() + GRACE_SECONDS + 1) == ["a"]
    # An entry larger than the whole bound is still served, then goes once unused.
    assert cache.evict(now=time.time() + GRACE_SECONDS + 1) == []  # 100 fits in 100
    cache.max_bytes = 50
    assert cache.evict(now=time.time() + GRACE_SECONDS + 1) == ["b"]


def test_stale_temporary_files_are_swept_and_never_entries(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 1_000)
    stale = tmp_path / f"{TEMP_PREFIX}killed"
    fresh = tmp_path / f"{TEMP_PREFIX}writing"
    for path in (stale, fresh):
        path.write_bytes(b"x" * 10_000)
    age(stale, STALE_TEMP_SECONDS + 1)
    assert cache.total_bytes() == 0
    cache.put("k", writer(b"y"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "k"]


def test_a_temporary_conversion_is_not_an_entry(tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path, 0)
    assert not cache.enabled
    path = cache.write_temporary(writer(b"once"))
    assert path.name.startswith(TEMP_PREFIX) and path.read_bytes() == b"once"
    assert cache.total_bytes() == 0
