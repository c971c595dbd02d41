"""Reading a policy directory: files, version hash, parsing and validation with locations.

Cedar's parser and validator report what is wrong but not where; operators need the
file and line, so this module splits policy text into statements itself and maps
every error back to a line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from privet.policy.errors import PolicyLoadError
from privet.policy.schemas import PolicyInfo

SCHEMA_FILE = "schema.cedarschema"
POLICY_SUFFIX = ".cedar"


def default_policy_dir() -> Path:
    """The shipped ``policies/`` of a source checkout (``platform/privet/policy`` → root)."""
    return Path(__file__).resolve().parents[3] / "policies"


@dataclass(frozen=True)
class SourceFile:
    """One file of the policy directory, read once."""

    name: str
    path: Path
    text: str


@dataclass(frozen=True)
class Statement:
    """One policy's text in its file and the line where it starts (1-based)."""

    text: str
    line: int


@dataclass(frozen=True)
class CompiledPolicies:
    """Everything the engine needs from a directory, built once per load or reload."""

    directory: Path
    version: str
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    policies: tuple[PolicyInfo, ...]
    files: tuple[str, ...]


def read_policy_dir(directory: Path) -> tuple[SourceFile, list[SourceFile]]:
    """Read the schema and every ``*.cedar`` file (sorted by name) of ``directory``."""
    if not directory.is_dir():
        raise PolicyLoadError(file=directory, line=None, message="policy directory not found")
    schema_path = directory / SCHEMA_FILE
    if not schema_path.is_file():
        raise PolicyLoadError(file=schema_path, line=None, message="schema file not found")
    schema = SourceFile(SCHEMA_FILE, schema_path, _read_text(schema_path))
    policies = [
        SourceFile(p.name, p, _read_text(p))
        for p in sorted(directory.iterdir(), key=lambda p: p.name)
        if p.is_file() and p.name.endswith(POLICY_SUFFIX)
    ]
    if not policies:
        raise PolicyLoadError(file=directory, line=None, message="no *.cedar policy files")
    return schema, policies


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(file=path, line=None, message=f"not UTF-8: {exc}") from exc


def version_hash(files: Sequence[SourceFile]) -> str:
    """SHA-256 over the sorted (file name, content) pairs, length-prefixed so it is unambiguous.

    For each pair in name order: u32 length of the UTF-8 name, the name, u64 length
    of the content, the content. The schema file takes part like any policy file.
    """
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        name = f.name.encode("utf-8")
        body = f.text.encode("utf-8")
        digest.update(len(name).to_bytes(4, "big"))
        digest.update(name)
        digest.update(len(body).to_bytes(8, "big"))
        digest.update(body)
    return "sha256:" + digest.hexdigest()


def split_statements(text: str) -> list[Statement]:
    """Split Cedar text into `;`-terminated statements outside strings, comments, brackets.

    A trailing fragment without `;` is returned too, so a missing terminator is
    reported at the statement it belongs to.
    """
    statements: list[Statement] = []
    start: int | None = None
    start_line = 1
    line = 1
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
            continue
        if ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch.isspace():
            i += 1
            continue
        if start is None:
            start, start_line = i, line
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            statements.append(Statement(text[start : i + 1], start_line))
            start = None
        i += 1
    if start is not None:
        statements.append(Statement(text[start:], start_line))
    return statements


def locate_parse_error(text: str, parse: Callable[[str], object], message: str) -> int:
    """Find the line of a parse error Cedar reported without a position.

    First finds the statement that fails on its own; then parses growing line
    prefixes of it, each closed by a sentinel token: Cedar reports the first bad
    token it meets, so the first prefix failing with that statement's message ends
    on the culprit line. Falls back to the statement's first line.
    """
    statements = split_statements(text)
    failing: Statement | None = None
    target = message
    errors: list[tuple[Statement, str]] = []
    for statement in statements:
        try:
            parse(statement.text)
        except ValueError as exc:
            errors.append((statement, str(exc)))
    # Prefer the first statement failing alone as the whole file does; statements of a
    # schema may also fail alone for want of their neighbours' declarations.
    same = [(st, msg) for st, msg in errors if msg == message]
    if same or errors:
        failing, target = (same or errors)[0]
    if failing is None:
        return statements[-1].line if statements else 1
    lines = failing.text.splitlines(keepends=True)
    for sentinel in (";", "}", ")"):
        if f"`{sentinel}`" in target:
            continue
        for k in range(1, len(lines) + 1):
            try:
                parse("".join(lines[:k]) + "\n" + sentinel)
            except ValueError as exc:
                if str(exc) == target:
                    return failing.line + k - 1
        break
    return failing.line


def load_schema(source: SourceFile) -> cedarpy.Schema:
    """Parse the schema, or raise naming the schema file and line."""
    try:
        return cedarpy.Schema.from_str(source.text)
    except ValueError as exc:
        line = locate_parse_error(source.text, cedarpy.Schema.from_str, str(exc))
        raise PolicyLoadError(file=source.path, line=line, message=f"schema: {exc}") from exc


def _parse_file(source: SourceFile) -> list[dict[str, Any]]:
    """Parse one policy file into EST (JSON) policies, in file order."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(source.text))
    except ValueError as exc:
        line = locate_parse_error(source.text, cedarpy.PolicySet.from_str, str(exc))
        raise PolicyLoadError(file=source.path, line=line, message=str(exc)) from exc
    if est.get("templates"):
        raise PolicyLoadError(
            file=source.path, line=None, message="policy templates are not supported"
        )
    static: dict[str, dict[str, Any]] = est.get("staticPolicies", {})
    # Cedar numbers the policies of a text policy0, policy1, ... in order.
    return [static[f"policy{i}"] for i in range(len(static))]


def compile_policy_dir(directory: Path) -> CompiledPolicies:
    """Read, parse, check ids, validate against the schema and build one PolicySet.

    The PolicySet's policy ids are the ``@id`` annotations, so Cedar's decision
    reasons name policies directly. Raises ``PolicyLoadError`` on the first problem.
    """
    directory = directory.resolve()
    schema_src, sources = read_policy_dir(directory)
    schema = load_schema(schema_src)
    merged: dict[str, dict[str, Any]] = {}
    infos: list[PolicyInfo] = []
    where: dict[str, str] = {}
    for source in sources:
        policies = _parse_file(source)
        statements = split_statements(source.text)

        def line_of(index: int, _statements: list[Statement] = statements) -> int | None:
            return _statements[index].line if index < len(_statements) else None

        for index, policy in enumerate(policies):
            pid = policy.get("annotations", {}).get("id")
            if not pid:
                raise PolicyLoadError(
                    file=source.path, line=line_of(index), message='policy has no @id("...")'
                )
            if pid in merged:
                raise PolicyLoadError(
                    file=source.path,
                    line=line_of(index),
                    message=f"duplicate policy id {pid!r} (also in {where[pid]})",
                )
            merged[pid] = policy
            where[pid] = source.name
            infos.append(
                PolicyInfo(
                    id=pid,
                    effect=policy["effect"],
                    file=source.name,
                    line=line_of(index) or 1,
                    reason=policy.get("annotations", {}).get("reason"),
                )
            )
        result = cedarpy.validate_policies(source.text, schema)
        if not result.validation_passed:
            first = result.errors[0]
            line = None
            if first.policy_id.startswith("policy") and first.policy_id[6:].isdigit():
                line = line_of(int(first.policy_id[6:]))
            detail = first.error
            annotated = result.id_annotations_by_policy_id.get(first.policy_id)
            if annotated:
                detail = f"policy {annotated!r}: {detail}"
            more = len(result.errors) - 1
            if more:
                detail += f" (and {more} more error{'s' if more > 1 else ''})"
            raise PolicyLoadError(file=source.path, line=line, message=detail)
    document = {"staticPolicies": merged, "templates": {}, "templateLinks": []}
    policy_set = cedarpy.PolicySet.from_json_str(json.dumps(document))
    return CompiledPolicies(
        directory=directory,
        version=version_hash([schema_src, *sources]),
        policy_set=policy_set,
        schema=schema,
        policies=tuple(infos),
        files=tuple(s.name for s in [schema_src, *sources]),
    )
