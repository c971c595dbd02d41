"""`python -m privet.cli.run_worker`: the local training worker process `privet serve`
starts. A module of its own that nothing imports, so running it as `__main__` does not
re-execute a module the `privet.cli` package already imported (runpy's RuntimeWarning)."""

from __future__ import annotations

import typer

from privet.cli.worker import worker

if __name__ == "__main__":
    typer.run(worker)
