"""The `privet` command line."""

from privet.cli.main import app

__all__ = ["app"]
