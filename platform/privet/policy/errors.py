"""Errors of the policy engine: an invalid policy directory must stop start-up loudly."""

from __future__ import annotations

from pathlib import Path


class PolicyError(Exception):
    """Base class for every policy-engine failure."""


class PolicyLoadError(PolicyError):
    """A policy or schema file is missing, unparsable or invalid.

    Carries the file and (1-based) line so an operator can fix the file without
    reading engine internals; `str()` renders ``file:line: message``.
    """

    def __init__(self, *, file: Path | str, line: int | None, message: str) -> None:
        self.file = Path(file)
        self.line = line
        self.message = message
        where = f"{self.file}:{line}" if line is not None else str(self.file)
        super().__init__(f"{where}: {message}")


class PolicyRequestError(PolicyError):
    """A request could not be built (an unsupported value type, a too-precise decimal)."""
