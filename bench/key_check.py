"""Key check timing: a wrong secret for a known id against an unknown id.

Calls ``KeyStore.check`` in-process on a fresh SQLite store (or ``--database URL``) with the two
kinds of wrong token, interleaved in random order so that drift and caching hit both alike, and
reports the median of each and of the paired differences. The two paths run the same query and
the same comparison (tests/security/test_key_timing.py); this measures what is left.

    python bench/key_check.py [--pairs 4000] [--database sqlite:///...] [--json out.json]

Run it on a quiet machine: on a shared one, the spread swamps microseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from steadyvoice.errors import InvalidKey
from steadyvoice.jobs.store import JobStore
from steadyvoice.security.keys import KeyStore, NewKey
from steadyvoice.security.principal import DEFAULT_TENANT, Role
from steadyvoice.settings import SecuritySettings


def timed(keys: KeyStore, token: str) -> float:
    start = time.perf_counter_ns()
    try:
        keys.check(token)
    except InvalidKey:
        pass
    else:
        raise AssertionError("a wrong token was accepted")
    return (time.perf_counter_ns() - start) / 1000


def run(url: str, pairs: int) -> dict[str, float]:
    store = JobStore.from_url(url)
    store.migrate()
    keys = KeyStore(store, SecuritySettings())
    for i in range(50):  # a table of realistic size
        keys.create(NewKey(Role.VIEWER, DEFAULT_TENANT, f"bench {i}"), by="bench")
    target = keys.create(NewKey(Role.VIEWER, DEFAULT_TENANT, "target"), by="bench").token
    public = target.split("_")[1]
    known, unknown, diffs = [], [], []
    for _ in range(200):  # warm up
        timed(keys, f"sv_{public}_{secrets.token_urlsafe(32)}")
    for _ in range(pairs):
        wrong_secret = f"sv_{public}_{secrets.token_urlsafe(32)}"
        unknown_id = f"sv_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        if random.random() < 0.5:
            a, b = timed(keys, wrong_secret), timed(keys, unknown_id)
        else:
            b, a = timed(keys, unknown_id), timed(keys, wrong_secret)
        known.append(a)
        unknown.append(b)
        diffs.append(a - b)
    store.engine.dispose()
    return {
        "pairs": pairs,
        "known_id_wrong_secret_median_us": statistics.median(known),
        "unknown_id_median_us": statistics.median(unknown),
        "paired_difference_median_us": statistics.median(diffs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.database or f"sqlite:///{tmp}/bench.db", args.pairs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
