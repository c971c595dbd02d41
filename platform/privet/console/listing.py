"""What the console's list pages share: the signed-in view of a list page (its
`project.list` decision taken), the viewer's projects where a per-project read is
allowed, and keyset paging (`privet.kit.paging`) as the API pages: a page of rows and
the address of the next one (`next_page`, shown by the `paging.html` macro)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel import Session

from privet.api.deps import Guard, QueryInt, SessionDep, project_resource
from privet.api.paging import next_page
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.auth.tables import Project
from privet.console.deps import ViewerDep, also, page, permits

MAX_ROWS = 100
"""The most rows a console list page shows at once."""

LimitQuery = Annotated[QueryInt, Query(ge=1, le=MAX_ROWS)]


@dataclass(frozen=True)
class Listing:
    """A list page's request: its viewer, session and guard, the guard's `project.list`
    decision on the platform already taken (signed in to the console); each panel decides
    its own read with `also`."""

    request: Request
    session: Session
    viewer: Identity
    guard: Guard

    def projects(self, action: str, *, among: Sequence[Project] | None = None) -> list[Project]:
        """The viewer's projects (or those of ``among``) where ``action`` is allowed: one
        decision per project, each ledgered (a project left out is a recorded denial)."""
        listed = (
            auth_service.list_projects(self.session, viewer=self.viewer) if among is None else among
        )
        return [p for p in listed if permits(also(self.guard, action), project_resource(p.id))]

    def next_link(self, cursor: str | None, **fixed: str) -> str | None:
        """This page from ``cursor`` (same filters, ``fixed`` set); None on the last."""
        return next_page(self.request, cursor, **fixed)

    def project_pages(self, action: str) -> list[tuple[Project, str | None]]:
        """The projects to show a page of (where ``action`` is allowed), each with the
        cursor its page starts after: following one project's next link (``project`` and
        ``after``), that project only; otherwise each from its first row."""
        query = self.request.query_params
        one, after = query.get("project"), query.get("after")
        if after is None or one is None:
            return [(p, None) for p in self.projects(action)]
        return [(p, after) for p in self.projects(action) if p.id == one]


def _listing(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
) -> Listing:
    guard.check(PLATFORM)
    return Listing(request, session, viewer, guard)


ListingDep = Annotated[Listing, Depends(_listing)]
