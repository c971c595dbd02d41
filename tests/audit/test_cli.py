"""The privet-audit command line, and that it stays installable on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from privet_audit.cli import main

from .helpers import Log
from .test_report import make_report


def test_verify_ok(bundle_path: Path, log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(bundle_path), "--key", log.vkey, "--strict-events"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("OK: 100 entries") and out.out.count("\n") == 1


def test_verify_with_key_file_and_trusted_checkpoint(
    bundle_path: Path, log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "log.vkey"
    key.write_text(log.vkey + "\n")
    trusted = tmp_path / "kept.checkpoint"
    trusted.write_text(log.checkpoint(100))
    argv = ["verify", str(bundle_path), "--key", str(key), "--trusted-checkpoint", str(trusted)]
    assert main(argv) == 0
    assert "extends trusted checkpoint of size 100" in capsys.readouterr().out


def test_verify_failure_names_the_problem(
    bundle_path: Path, log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = bundle_path.read_bytes().split(b"\n")
    del lines[11 + 42]
    bundle_path.write_bytes(b"\n".join(lines))
    assert main(["verify", str(bundle_path), "--key", log.vkey]) == 1
    err = capsys.readouterr().err
    assert err.startswith("FAILED: checkpoint 4 (size 50) does not match the entries")


def test_verify_without_key_warns(bundle_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(bundle_path)]) == 0
    assert "pass --key" in capsys.readouterr().err


def test_bad_key_is_a_usage_error(bundle_path: Path) -> None:
    assert main(["verify", str(bundle_path), "--key", "nope+00000000+AAAA"]) == 2


def test_verify_report(log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(make_report(log, [2, 3])))
    assert main(["verify-report", str(path), "--key", log.vkey]) == 0
    rep = make_report(log, [2, 3])
    rep["ledger"]["events"][1]["index"] = 4
    path.write_text(json.dumps(rep))
    assert main(["verify-report", str(path), "--key", log.vkey]) == 1
    assert "index 4" in capsys.readouterr().err


def test_inspect(bundle_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(bundle_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tree_size"] == 100 and len(info["checkpoints"]) == 10


def test_console_entry_point_runs(bundle_path: Path, log: Log) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "privet_audit.cli", "verify", str(bundle_path), "--key", log.vkey],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_cli_imports_nothing_of_the_platform() -> None:
    code = (
        "import sys, privet_audit.cli, privet_audit.bundle, privet_audit.report\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'privet', 'torch', 'fastapi', 'sqlalchemy', 'sqlmodel', 'pydantic'})\n"
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_package_sources_import_only_stdlib_and_cryptography() -> None:
    import ast

    import privet_audit

    allowed = set(sys.stdlib_module_names) | {"cryptography", "privet_audit", "__future__"}
    for path in Path(privet_audit.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
