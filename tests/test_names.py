"""One name, one class: no two classes in platform/privet or audit/privet_audit share a
name (issue 19), so a name read in a traceback, a review or a grep means one thing."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = (REPO / "platform" / "privet", REPO / "audit" / "privet_audit")

ALLOWED: dict[str, str] = {}
"""Class names that may repeat, each with the reason it cannot be helped (none today)."""


def _class_definitions() -> dict[str, list[str]]:
    """Every class name (module level, nested and inside functions) -> where it is defined."""
    found: dict[str, list[str]] = defaultdict(list)
    for root in ROOTS:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    found[node.name].append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_two_classes_share_a_name() -> None:
    repeated = {
        name: where
        for name, where in _class_definitions().items()
        if len(where) > 1 and name not in ALLOWED
    }
    assert not repeated, f"rename so each class name is unique: {repeated}"


def test_the_check_sees_the_packages() -> None:
    names = _class_definitions()
    assert "ModelVersion" in names and "BundleError" in names
