"""``steadyvoice batch submit | status | cancel | list``: a client of a running service.

``submit`` uploads a CSV, JSONL or JSON file with its SHA-256 as the ``Idempotency-Key``: run
again after an interruption (Ctrl-C, a dropped link), it finds the batch it made and follows
it, without a duplicate. ``--wait`` shows a progress bar (items done, rate, ETA) until the
batch finishes; ``--out DIR`` then downloads the archive, unpacks it and checks every file's
SHA-256 against the manifest. Refusals are one line on stderr (row errors listed below it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_FAILED = 1  # some items failed, or a file did not match its manifest
EXIT_REFUSED = 2
POLL_SECONDS = 0.5
SHOWN_ROW_ERRORS = 20


def add_parser(sub: Any) -> None:
    """Register the ``batch`` command group on the top-level subparsers."""
    batch = sub.add_parser("batch", help="batches on a running service: submit, status, list")
    cmds = batch.add_subparsers(dest="batch_command", required=True)

    submit = cmds.add_parser("submit", help="queue a CSV, JSONL or JSON file of items")
    submit.add_argument("file", type=Path)
    _connection(submit)
    submit.add_argument("--wait", action="store_true", help="follow it with a progress bar")
    submit.add_argument(
        "--out", type=Path, help="then download, unpack and verify the archive here"
    )
    submit.set_defaults(func=_submit)

    status = cmds.add_parser("status", help="counts, percent done, rate, ETA, failed items")
    status.add_argument("batch_id")
    _connection(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    cancel = cmds.add_parser("cancel", help="cancel the queued items (running ones finish)")
    cancel.add_argument("batch_id")
    _connection(cancel)
    cancel.set_defaults(func=_cancel)

    ls = cmds.add_parser("list", help="the tenant's batches, newest first")
    _connection(ls)
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="the service's URL (default: $STEADYVOICE_URL)")
    parser.add_argument(
        "--key-file", type=Path, help="a file holding the API key (default: $STEADYVOICE_KEY)"
    )


def _submit(args: argparse.Namespace) -> int:
    from steadyvoice.batches import client as api

    with api.connect(args.server, args.key_file) as http:
        try:
            batch = api.submit(http, args.file)
        except api.ClientError as exc:
            return _refused(exc)
        print(f"batch {batch['id']}: {batch['item_count']} items", flush=True)
        if not (args.wait or args.out):
            return 0
        try:
            batch = _follow(http, batch)
            if args.out is None:
                return EXIT_FAILED if batch["counts"]["failed"] else 0
            return _fetch(http, batch, args.out)
        except api.ClientError as exc:
            return _refused(exc)


def _follow(http: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Poll until the batch settles, with a bar of items done, their rate and the ETA."""
    from tqdm import tqdm

    from steadyvoice.batches import client as api

    with tqdm(total=batch["item_count"], unit="item", file=sys.stderr, desc="batch") as bar:
        while True:
            bar.update(batch["done"] - bar.n)
            bar.set_postfix_str(f"failed={batch['counts']['failed']}")
            if batch["status"] in ("done", "canceled"):
                return batch
            time.sleep(POLL_SECONDS)
            batch = api.get(http, f"/v1/batches/{batch['id']}")


def _fetch(http: Any, batch: dict[str, Any], out: Path) -> int:
    from steadyvoice.batches import client as api

    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"batch_{batch['id']}.zip"
    api.download(http, batch["id"], archive)
    unpacked = api.unpack(archive, out)
    archive.unlink()
    for name in unpacked.mismatched:
        print(f"steadyvoice: error: checksum_mismatch: {name}", file=sys.stderr)
    ok = unpacked.files - len(unpacked.mismatched)
    print(f"verified {ok} of {unpacked.files} files (SHA-256) in {out}")
    failed = batch["counts"]["failed"]
    if failed:
        print(f"{failed} item(s) failed: steadyvoice batch status {batch['id']}", file=sys.stderr)
    return EXIT_FAILED if unpacked.mismatched or failed else 0


def _status(args: argparse.Namespace) -> int:
    batch = _ask(args, "GET", f"/v1/batches/{args.batch_id}")
    if isinstance(batch, int):
        return batch
    if args.json:
        print(json.dumps(batch, indent=2))
        return 0
    print(_line(batch))
    for item in batch["failed"]:
        print(f"  row {item['row']} ({item['name'] or '-'}): {item['code']}: {item['message']}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    change = _ask(args, "POST", f"/v1/batches/{args.batch_id}/cancel")
    if isinstance(change, int):
        return change
    print(f"canceled {change['changed']} queued item(s)")
    print(_line(change["batch"]))
    return 0


def _list(args: argparse.Namespace) -> int:
    page = _ask(args, "GET", "/v1/batches", limit=args.limit)
    if isinstance(page, int):
        return page
    if args.json:
        print(json.dumps(page["items"], indent=2))
        return 0
    for batch in page["items"]:
        print(f"{batch['created_at']}  {_line(batch)}")
    return 0


def _ask(args: argparse.Namespace, method: str, url: str, **params: Any) -> dict[str, Any] | int:
    """One call to the service; once a refusal or failure is reported, its exit status."""
    from steadyvoice.batches import client as api

    with api.connect(args.server, args.key_file) as http:
        try:
            return api.get(http, url, **params) if method == "GET" else api.post(http, url)
        except api.ClientError as exc:
            return _refused(exc)


def _line(batch: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in batch["counts"].items() if v)
    eta = batch.get("eta_seconds")
    rate = batch.get("items_per_second")
    extra = (f", {rate}/s" if rate else "") + (f", ETA {eta:.0f} s" if eta else "")
    return (
        f"{batch['id']}  {batch['status']}  {batch['percent_done']}% of "
        f"{batch['item_count']} ({counts}){extra}"
    )


def _refused(exc: Any) -> int:
    print(f"steadyvoice: error: {exc.code}: {exc.message}", file=sys.stderr)
    errors = exc.body.get("errors") or []
    for error in errors[:SHOWN_ROW_ERRORS]:
        where = f"row {error['row']}" + (f", {error['column']}" if error.get("column") else "")
        print(f"  {where}: {error['code']}: {error['message']}", file=sys.stderr)
    if len(errors) > SHOWN_ROW_ERRORS or exc.body.get("error_count", 0) > len(errors):
        print(f"  ... {exc.body.get('error_count', len(errors))} problems in all", file=sys.stderr)
    return EXIT_FAILED if exc.failed else EXIT_REFUSED
