"""``privet-audit``: verify ledger bundles and report evidence offline.

Exit status: 0 verified, 1 verification failed, 2 usage or input error. Only the
standard library and ``cryptography`` are needed, so an auditor can run it on a
machine that has never seen the platform.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from privet_audit.bundle import BundleError, inspect_bundle, verify_bundle
from privet_audit.checkpoint import NoteError, Verifier
from privet_audit.report import verify_report

__all__ = ["main"]


def _read_key(value: str | None) -> Verifier | None:
    """``--key`` is a verifier key string, or a file holding one."""
    if value is None:
        return None
    path = Path(value)
    text = path.read_text("utf-8") if "+" not in value and path.is_file() else value
    return Verifier.parse(text.strip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="privet-audit", description="Verify privet audit ledgers offline."
    )
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify an exported ledger bundle")
    v.add_argument("bundle", type=Path)
    v.add_argument(
        "--trusted-checkpoint",
        type=Path,
        help="a signed checkpoint you kept earlier; the bundle must extend it",
    )
    v.add_argument(
        "--strict-events", action="store_true", help="also check each entry is a valid event"
    )
    v.add_argument("--key", help="the log's verifier key (or a file holding it)")
    r = sub.add_parser("verify-report", help="verify the ledger evidence cited by a report")
    r.add_argument("report", type=Path)
    r.add_argument("--key", help="the log's verifier key (or a file holding it)")
    i = sub.add_parser("inspect", help="print a bundle's header and checkpoints as JSON")
    i.add_argument("bundle", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``privet-audit`` console script."""
    args = _parser().parse_args(argv)
    try:
        key = _read_key(getattr(args, "key", None))
    except (OSError, NoteError) as exc:
        print(f"privet-audit: bad --key: {exc}", file=sys.stderr)
        return 2
    if args.command == "verify":
        trusted = None
        if args.trusted_checkpoint is not None:
            try:
                trusted = args.trusted_checkpoint.read_text("utf-8")
            except OSError as exc:
                print(f"privet-audit: cannot read trusted checkpoint: {exc}", file=sys.stderr)
                return 2
        res = verify_bundle(
            args.bundle, trusted_checkpoint=trusted, strict_events=args.strict_events, key=key
        )
        for warning in res.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if res.ok:
            print(f"{res.message} [{res.events_per_second:,.0f} events/s]")
            return 0
        print(f"FAILED: {res.message}", file=sys.stderr)
        return 1
    if args.command == "verify-report":
        rep = verify_report(args.report, key=key)
        if rep.key_source == "report":
            print(
                "warning: verifier key taken from the report itself: pass --key to pin it",
                file=sys.stderr,
            )
        if rep.ok:
            print(rep.message)
            return 0
        print(f"FAILED: {rep.message}", file=sys.stderr)
        return 1
    try:
        info = inspect_bundle(args.bundle)
    except (OSError, BundleError) as exc:
        print(f"privet-audit: cannot inspect bundle: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
