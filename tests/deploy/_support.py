"""What deploy/ is checked against: the real settings classes, the real Typer command tree,
and small static readers (Dockerfile instructions, .dockerignore rules, validator binaries).

Nothing here needs Docker, a cluster or the network."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PLATFORM = REPO / "platform"
CHART = DEPLOY / "helm" / "privet"

#: A PRIVET_* name anywhere in a file (comments and interpolations included).
PRIVET_ENV_RE = re.compile(r"\bPRIVET_[A-Z0-9_]+\b")


# --- settings ----------------------------------------------------------------------------


@cache
def settings_classes() -> tuple[type, ...]:
    """Every pydantic-settings class under platform/privet (found by reading the source,
    so a settings class added anywhere is picked up), imported."""
    found: list[type] = []
    for path in sorted((PLATFORM / "privet").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        names = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(
                (isinstance(b, ast.Name) and b.id == "BaseSettings")
                or (isinstance(b, ast.Attribute) and b.attr == "BaseSettings")
                for b in node.bases
            )
        ]
        if not names:
            continue
        module = ".".join(path.relative_to(PLATFORM).with_suffix("").parts)
        mod = importlib.import_module(module)
        found.extend(getattr(mod, name) for name in names)
    return tuple(found)


@cache
def settings_env_names() -> frozenset[str]:
    """The environment variable of every field of every settings class (env prefix +
    field name, or the field's alias), upper-cased as pydantic-settings matches them."""
    names: set[str] = set()
    for cls in settings_classes():
        config: dict[str, Any] = cls.model_config  # type: ignore[attr-defined]
        prefix = config.get("env_prefix", "")
        for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
            aliases = [a for a in (info.validation_alias, info.alias) if isinstance(a, str)]
            for alias in aliases or [prefix + name]:
                names.add(alias.upper())
    return frozenset(names)


def setting_for(env_name: str) -> str:
    """PRIVET_X_FILE (read by the image's entrypoint) stands for PRIVET_X, unless it is a
    setting of its own (PRIVET_LEDGER_SIGNING_KEY_FILE)."""
    if env_name.endswith("_FILE") and env_name not in settings_env_names():
        return env_name[: -len("_FILE")]
    return env_name


def unknown_settings(env_names: set[str] | list[str]) -> list[str]:
    known = settings_env_names()
    return sorted(n for n in env_names if n.startswith("PRIVET_") and setting_for(n) not in known)


# --- the CLI -----------------------------------------------------------------------------


# Typer builds a click command tree (recent Typer vendors click as typer._click), so the
# tree is read by duck typing: groups have `commands`, options have `opts` and `is_flag`.


@cache
def cli_root() -> Any:
    from typer.main import get_command

    from privet.cli import app

    return get_command(app)


def _is_group(cmd: Any) -> bool:
    return isinstance(getattr(cmd, "commands", None), dict)


def _option_flags(cmd: Any) -> dict[str, bool]:
    """Option name -> whether it is a flag (takes no value)."""
    opts: dict[str, bool] = {"--help": True}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option":
            for name in [*param.opts, *param.secondary_opts]:
                opts[name] = bool(param.is_flag or getattr(param, "count", False))
    return opts


def check_cli_args(argv: list[str], root: Any = None, prog: str = "privet") -> list[str]:
    """Problems with running `privet <argv>` (or `prog` with another click tree): unknown
    subcommands, unknown options, an option missing its value. Values (including $(VAR)
    references) are not judged."""
    problems: list[str] = []
    cmd = cli_root() if root is None else root
    path = [prog]
    i = 0
    while i < len(argv):
        token = argv[i]
        if _is_group(cmd):
            if token.startswith("-"):
                problems.append(f"{' '.join(path)}: option {token} before a subcommand")
                i += 1
                continue
            sub = cmd.commands.get(token)
            if sub is None:
                problems.append(f"{' '.join(path)}: no subcommand {token!r}")
                return problems
            cmd, path = sub, [*path, token]
            i += 1
            continue
        if token.startswith("--"):
            name, has_value = (token.split("=", 1)[0], True) if "=" in token else (token, False)
            flags = _option_flags(cmd)
            if name not in flags:
                problems.append(f"{' '.join(path)}: no option {name}")
            elif not flags[name] and not has_value:
                if i + 1 >= len(argv):
                    problems.append(f"{' '.join(path)}: option {name} needs a value")
                i += 1  # skip the value
        i += 1
    if _is_group(cmd):
        problems.append(f"{' '.join(path)}: a subcommand is needed")
    return problems


# --- Dockerfile --------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    value: str
    line: int

    def exec_form(self) -> list[str] | None:
        try:
            parsed = json.loads(self.value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def args(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ARG"):
            name, _, default = ins.value.partition("=")
            out[name.strip()] = default.strip()
        return out

    def env(self) -> dict[str, str]:
        return parse_env(self.all("ENV"))


def parse_dockerfile(text: str) -> tuple[list[Instruction], list[Stage]]:
    """Instructions (continuations joined, comments dropped) and the stages they form;
    the instructions before the first FROM are returned on their own."""
    logical: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment inside a continuation
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(line)
        joined = " ".join(part for part in buf if part)
        buf = []
        keyword, _, rest = joined.partition(" ")
        logical.append(Instruction(keyword.upper(), rest.strip(), start))
    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for ins in logical:
        if ins.keyword == "FROM":
            words = ins.value.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(ins)
        else:
            preamble.append(ins)
    return preamble, stages


def parse_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        for word in shlex.split(ins.value):
            if "=" in word:
                key, _, value = word.partition("=")
                env[key] = value
    return env


# --- .dockerignore -----------------------------------------------------------------------


def dockerignore_rules(path: Path) -> list[tuple[bool, str]]:
    rules: list[tuple[bool, str]] = []
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        rules.append((negate, pattern.strip().strip("/")))
    return rules


def _matches(pattern: str, rel: str) -> bool:
    """Docker's matching, closely enough for these rules: a pattern matches the path
    itself or any directory above it; `**/` matches any number of directories."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    globs = {pattern}
    if pattern.startswith("**/"):
        globs.add(pattern[3:])
    for glob in globs:
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, glob):
                return True
    return False


def dockerignore_excludes(rules: list[tuple[bool, str]], rel: str) -> bool:
    excluded = False
    for negate, pattern in rules:
        if _matches(pattern, rel):
            excluded = not negate
    return excluded


# --- validator binaries ------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A validator binary: beside this interpreter (.venv/bin, where
    deploy/tools/install-validators.sh puts it) or on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    return shutil.which(name)


def compose_schema() -> Path | None:
    """The Compose file JSON schema installed by deploy/tools/install-validators.sh."""
    path = Path(sys.executable).parent.parent / "share" / "compose-spec" / "compose-spec.json"
    return path if path.is_file() else None
