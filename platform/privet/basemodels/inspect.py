"""Read a local Hugging Face folder as hostile input: what a base model is, and its digests.

A folder is refused (InvalidInputError, naming the rule) when it lies outside the allowed
roots, holds a symbolic link anywhere, has a file over the size limit, lacks config.json or
model.safetensors (pickled `.bin` weights are never read), names a family privet cannot
train, or has no licence (an SPDX id the SPDX list knows, or a licence's text:
``licences``). Every file is hashed in bounded chunks; nothing is imported or executed,
so this runs in the gateway without torch.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privet.basemodels.licences import Licence, spdx_expression
from privet.kit.errors import InvalidInputError, PayloadTooLargeError
from privet.training.catalog import CONFIG_FILE, POOLINGS, WEIGHTS_FILE
from privet.training.families import FamilyError, family_for

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spm.model",
    "sentencepiece.bpe.model",
    "added_tokens.json",
)
"""Files a tokenizer is read from: pinned with the weights (a swapped vocabulary changes
what the model sees)."""
LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE")
SCRIPTS = ("latin", "cjk", "devanagari", "cyrillic", "arabic", "hangul", "other")
_CHUNK = 1 << 20
_MAX_SMALL = 16 << 20
"""Config, tokenizer and sentence-transformers JSON files are parsed only below this."""


@dataclass(frozen=True)
class Inspection:
    """What a folder holds: digests of every pinned file and the model's public facts."""

    path: Path
    digests: dict[str, str]
    sizes: dict[str, int]
    model_type: str
    architecture: str
    vocab_size: int
    vocab_coverage: dict[str, int]
    """Per script, the per-mille of vocabulary entries with a letter of that script."""
    max_positions: int
    pooling: str
    pooling_source: str
    licence: Licence


def _refuse(rule: str, detail: str) -> InvalidInputError:
    return InvalidInputError(detail, field="path", rule=rule)


def resolve_folder(path: str, roots: Sequence[Path]) -> Path:
    """The folder, if it is a real directory under one of `roots` (links refused)."""
    raw = Path(path)
    if not raw.is_absolute():
        raise _refuse("absolute-path", f"the base-model path must be absolute, got {path!r}")
    if any(p.is_symlink() for p in [raw, *raw.parents]):
        raise _refuse("no-symlinks", f"{path} is or passes through a symbolic link")
    folder = raw.resolve()
    allowed = [r.resolve() for r in roots]
    if not any(folder == r or folder.is_relative_to(r) for r in allowed):
        raise _refuse(
            "allowed-root",
            f"{folder} is outside the allowed base-model roots "
            f"(PRIVET_BASE_MODELS_ROOTS: {[str(r) for r in allowed] or 'none set'})",
        )
    if not folder.is_dir():
        raise _refuse("folder", f"{folder} is not a directory")
    return folder


def _files(folder: Path, max_bytes: int) -> dict[str, int]:
    """Every file under the folder with its size; refuses links and oversized files."""
    sizes: dict[str, int] = {}
    for entry in sorted(folder.rglob("*")):
        rel = entry.relative_to(folder).as_posix()
        if entry.is_symlink():
            raise _refuse("no-symlinks", f"{rel} is a symbolic link; copy the file in instead")
        if not entry.is_file():
            continue
        size = entry.stat().st_size
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"{rel} is {size} bytes, over PRIVET_BASE_MODELS_MAX_FILE_BYTES ({max_bytes})",
                rule="max-file-bytes",
                limit=max_bytes,
            )
        sizes[rel] = size
    return sizes


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _json(folder: Path, name: str) -> Any:
    path = folder / name
    if path.stat().st_size > _MAX_SMALL:
        raise _refuse("json-size", f"{name} is over {_MAX_SMALL} bytes")
    try:
        return json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse("json", f"{name} is not valid JSON: {exc}") from exc


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    code = ord(ch)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x3040 <= code <= 0x30FF:
        return "cjk"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "DEVANAGARI", "CYRILLIC", "ARABIC"):
        if name.startswith(script):
            return script.lower()
    return "other"


def vocab_coverage(tokens: Iterable[str]) -> tuple[int, dict[str, int]]:
    """Vocabulary size and, per script, the per-mille of entries holding a letter of it."""
    counts = dict.fromkeys(SCRIPTS, 0)
    total = 0
    for token in tokens:
        total += 1
        for script in {s for ch in token if (s := _script(ch))}:
            counts[script] += 1
    return total, {k: (v * 1000) // total if total else 0 for k, v in counts.items()}


def _vocab(folder: Path, files: Mapping[str, int]) -> list[str]:
    """The vocabulary entries, from vocab.txt, vocab.json or tokenizer.json."""
    if "vocab.txt" in files:
        if files["vocab.txt"] > _MAX_SMALL:
            raise _refuse("json-size", f"vocab.txt is over {_MAX_SMALL} bytes")
        return (folder / "vocab.txt").read_text("utf-8", errors="replace").splitlines()
    if "vocab.json" in files:
        return list(_json(folder, "vocab.json"))
    if "tokenizer.json" in files:
        vocab = (_json(folder, "tokenizer.json").get("model") or {}).get("vocab") or {}
        # WordPiece/BPE: {token: id}; Unigram: [[token, score], ...]
        return list(vocab) if isinstance(vocab, dict) else [str(v[0]) for v in vocab]
    raise _refuse("tokenizer", "no vocabulary (vocab.txt, vocab.json or tokenizer.json)")


def _pooling(folder: Path, files: Mapping[str, int], asked: str | None) -> tuple[str, str]:
    """(pooling, where it came from): the caller's, else a sentence-transformers config."""
    if asked is not None:
        if asked not in POOLINGS:
            raise InvalidInputError(f"pooling must be one of {POOLINGS}", field="pooling")
        return asked, "set by the caller"
    for name in sorted(files):
        if name.endswith("_Pooling/config.json"):
            modes = _json(folder, name)
            if modes.get("pooling_mode_mean_tokens"):
                return "mean", f"sentence-transformers ({name})"
            if modes.get("pooling_mode_cls_token"):
                return "cls", f"sentence-transformers ({name})"
    return "cls", "default (no sentence-transformers pooling config)"


def _front_matter_licence(folder: Path, files: Mapping[str, int]) -> str | None:
    """The ``license:`` of a model card's YAML front matter (README.md), if it has one."""
    if "README.md" not in files or files["README.md"] > _MAX_SMALL:
        return None
    text = (folder / "README.md").read_text("utf-8", errors="replace")
    if text.startswith("---"):
        for line in text.split("---", 2)[1].splitlines():
            if line.strip().startswith("license:"):
                return line.split(":", 1)[1].strip().strip("\"'") or None
    return None


def _licence(folder: Path, files: Mapping[str, int], given: Licence | None) -> Licence:
    """The caller's licence; else the model card's SPDX id; else a LICENSE file's text
    (free text); else refused. A card's id that the SPDX list does not know (``other``)
    is refused unless a LICENSE file gives the text."""
    if given is not None:
        return given
    card = _front_matter_licence(folder, files)
    unknown: InvalidInputError | None = None
    if card is not None:
        try:
            return Licence(spdx=spdx_expression(card, field="README.md license"), text=None)
        except InvalidInputError as exc:
            unknown = exc
    for name in LICENCE_FILES:
        if name in files and files[name] <= _MAX_SMALL:
            words = (folder / name).read_text("utf-8", errors="replace").strip()
            if words:
                return Licence(spdx=None, text=words)
    if unknown is not None:
        raise unknown
    raise InvalidInputError(
        "no licence found (README front matter or a LICENSE file); give its SPDX id "
        "(license) or its text (licence_text)",
        field="license",
        rule="licence",
    )


def inspect_folder(
    path: str,
    *,
    roots: Sequence[Path],
    max_file_bytes: int,
    pooling: str | None = None,
    licence: Licence | None = None,
) -> Inspection:
    """Check a folder against every rule above and describe it (see the module docstring);
    ``licence``: the caller's (``licences.given_licence``), else read from the folder."""
    folder = resolve_folder(path, roots)
    files = _files(folder, max_file_bytes)
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if required not in files:
            raise _refuse(
                "required-file",
                f"{folder} has no {required}: a Hugging Face folder with safetensors weights "
                "is needed (pickled .bin weights are not read)",
            )
    config = _json(folder, CONFIG_FILE)
    if not isinstance(config, dict):
        raise _refuse("json", f"{CONFIG_FILE} must be a JSON object")
    model_type = str(config.get("model_type", ""))
    chosen, source = _pooling(folder, files, pooling)
    try:
        family = family_for(model_type)
        family.check_trainable(config, pooling=chosen)
    except FamilyError as exc:
        raise InvalidInputError(str(exc), field="path", rule="model-family") from exc
    size, coverage = vocab_coverage(_vocab(folder, files))
    pinned = [n for n in files if n in (CONFIG_FILE, WEIGHTS_FILE, *TOKENIZER_FILES)]
    return Inspection(
        path=folder,
        digests={name: sha256_file(folder / name) for name in sorted(pinned)},
        sizes={name: files[name] for name in sorted(pinned)},
        model_type=model_type,
        architecture=str((config.get("architectures") or [family.label])[0]),
        vocab_size=size,
        vocab_coverage=coverage,
        max_positions=family.usable_positions(config),
        pooling=chosen,
        pooling_source=source,
        licence=_licence(folder, files, licence),
    )
