"""Checkpoint sinks: where every signed checkpoint is also published for external witnesses.

A sink receives checkpoints after the sequencer's transaction committed, in increasing
size. Publishing is best effort (a failing sink is logged, never blocks the log), and a
sink may skip sizes: a witness only needs *some* checkpoints to hold the log to them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["CheckpointSink", "FileCheckpointSink", "read_checkpoint_log"]

log = logging.getLogger(__name__)


@runtime_checkable
class CheckpointSink(Protocol):
    """Receives each new signed checkpoint (a C2SP signed note) of the log."""

    def publish(self, tree_size: int, note: str) -> None: ...


def _parse_notes(text: str) -> list[str]:
    """Split a checkpoint log into notes (each: text, blank line, signature lines)."""
    notes: list[str] = []
    body: list[str] = []
    sigs: list[str] = []
    for line in text.split("\n"):
        if line.startswith("\u2014 "):
            sigs.append(line)
        elif line == "":
            if sigs:
                notes.append("\n".join(body) + "\n\n" + "\n".join(sigs) + "\n")
                body, sigs = [], []
        else:
            if sigs:  # a body line right after signatures: previous note ended
                notes.append("\n".join(body) + "\n\n" + "\n".join(sigs) + "\n")
                body, sigs = [], []
            body.append(line)
    if sigs:
        notes.append("\n".join(body) + "\n\n" + "\n".join(sigs) + "\n")
    return notes


def read_checkpoint_log(path: Path) -> list[str]:
    """Every signed note in a checkpoint log file, oldest first."""
    if not path.exists():
        return []
    return _parse_notes(path.read_text("utf-8"))


def _note_size(note: str) -> int:
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else -1


class FileCheckpointSink:
    """Appends each checkpoint note, followed by a blank line, to a plain text file.

    Several processes may share the file: each append happens under ``flock`` and is
    skipped unless it is larger than the last checkpoint already in the file, so the file
    always holds strictly growing sizes. Each append is fsynced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0
        self._last_size = -1

    def _catch_up(self, fd: int) -> None:
        end = os.fstat(fd).st_size
        if end < self._offset:  # file replaced or truncated: re-read it all
            self._offset, self._last_size = 0, -1
        if end == self._offset:
            return
        data = os.pread(fd, end - self._offset, self._offset).decode("utf-8", "replace")
        for note in _parse_notes(data):
            self._last_size = max(self._last_size, _note_size(note))
        self._offset = end

    def publish(self, tree_size: int, note: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up(fd)
                if tree_size <= self._last_size:
                    return
                os.write(fd, (note + "\n").encode("utf-8"))
                os.fsync(fd)
                self._offset = os.fstat(fd).st_size
                self._last_size = tree_size
            finally:
                os.close(fd)  # releases the flock
