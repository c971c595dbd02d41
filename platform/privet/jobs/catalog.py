"""Base models added to the allow-list from a file (PRIVET_JOBS_EXTRA_CATALOG).

Each entry is pinned exactly like the shipped ones (SHA-256 of every file), so adding a
model to the allow-list is a reviewed configuration change, not a way around pinning. The
gateway (to decide `base_model_allowlisted`) and every worker read the same file.

File format: ``[{"name": "tiny", "path": "/models/tiny", "digests": {"model.safetensors":
"<sha256>", "config.json": "<sha256>", ...}, "description": "...", "pooling": "cls"}]``
(`pooling`: `cls`, the default, or `mean` for sentence-embedding models; see
privet.training.pooling).
"""

from __future__ import annotations

import json
from pathlib import Path

from privet.jobs.settings import get_job_settings
from privet.kit.process_state import ProcessRegistry
from privet.training.catalog import CATALOG, BaseModelSpec, Catalog, CatalogError

_loaded: ProcessRegistry[str, list[str]] = ProcessRegistry(
    "jobs.extra_catalogs",
    why="the base-model catalog (privet.training.catalog.CATALOG) is one per process, so "
    "an extra catalog file is registered in it once per process; the names it added",
)


def write_catalog_file(path: Path, specs: list[BaseModelSpec]) -> Path:
    """Write specs in the file format above (tests and `privet` operators use it)."""
    path.write_text(
        json.dumps(
            [
                {
                    "name": s.name,
                    "path": str(s.path),
                    "digests": dict(s.digests),
                    "description": s.description,
                    "pooling": s.pooling,
                }
                for s in specs
            ],
            indent=2,
        )
    )
    return path


def load_extra_catalog(path: Path, catalog: Catalog = CATALOG) -> list[str]:
    """Register every entry of the file (replacing same-named test entries); their names."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read the extra base-model catalog {path}: {exc}") from exc
    names = []
    for entry in entries:
        spec = BaseModelSpec(
            name=str(entry["name"]),
            path=Path(entry["path"]),
            digests=dict(entry["digests"]),
            description=str(entry.get("description", "")),
            license=str(entry.get("license", "")),
            pooling=str(entry.get("pooling", "cls")),
        )
        catalog.register(spec, replace=True)
        names.append(spec.name)
    return names


def ensure_catalog() -> Catalog:
    """The process catalog, with PRIVET_JOBS_EXTRA_CATALOG's entries registered once."""
    path = get_job_settings().extra_catalog
    if path is not None:
        _loaded.get_or_create(str(path), lambda: load_extra_catalog(path))
    return CATALOG
