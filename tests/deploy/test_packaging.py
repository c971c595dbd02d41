"""The image installs privet as a regular (non-editable) package: every data file the code
reads at run time must be declared as package data, or it is missing in the image."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.deploy._support import REPO

#: Documentation beside the code, not read at run time.
DOCS = ("*.md", "*.rst", "*.txt")


def test_every_data_file_is_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    package_data: dict[str, list[str]] = config["package-data"]
    roots = {
        "privet": REPO / "platform" / "privet",
        "privet_audit": REPO / "audit" / "privet_audit",
    }
    missing: list[str] = []
    for root_name, root in roots.items():
        for path in sorted(root.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
                continue
            if any(fnmatch.fnmatch(path.name, doc) for doc in DOCS):
                continue
            covered = False
            for key, patterns in package_data.items():
                if key == "*":
                    base = path.parent
                else:
                    parts = key.split(".")
                    if parts[0] != root_name:
                        continue
                    base = root.joinpath(*parts[1:])
                if base not in path.parents:
                    continue
                rel = path.relative_to(base).as_posix()
                if any(fnmatch.fnmatch(rel, pattern) for pattern in patterns):
                    covered = True
            if not covered:
                missing.append(path.relative_to(REPO).as_posix())
    assert missing == [], "add these to [tool.setuptools.package-data] in pyproject.toml"
