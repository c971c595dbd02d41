"""One module per page (its routes); ROUTERS is what the console includes, in order.

Adding a page: a module here with a `router`, a template in templates/, a link in
templates/base.html's navigation, an entry below, and a test in tests/console/.
"""

from __future__ import annotations

from fastapi import APIRouter

from privet.console.pages import (
    admin,
    audit,
    datasets,
    decisions,
    home,
    models,
    monitoring,
    predict,
    reports,
    requests,
    signin,
    training,
)

ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    home.router,
    audit.router,
    models.router,
    decisions.router,
    monitoring.router,
    predict.router,
    reports.router,
    requests.router,
    admin.router,
    datasets.router,
    training.router,
)
