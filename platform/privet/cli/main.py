"""`privet` command line: run the platform and talk to it."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from privet.cli import profiles, signin
from privet.cli.api_keys import api_keys_app
from privet.cli.base_models import base_models_app
from privet.cli.compliance import dsr_app, reports_app
from privet.cli.config import config_app
from privet.cli.datasets import datasets_app
from privet.cli.dev import dev_app
from privet.cli.jobs import models_app, train_app
from privet.cli.keys import keys_app
from privet.cli.ledger import audit_app
from privet.cli.monitor import monitor_app
from privet.cli.output import group
from privet.cli.policy import policy_app
from privet.cli.predict import predict as predict_command
from privet.cli.predictions import predictions_app
from privet.cli.projects import invitations_app, members_app, projects_app
from privet.cli.worker import worker as worker_command
from privet.config import Settings, get_settings

app = group(
    "privet: fine-tune and serve text models on sensitive data, with proof of what "
    "happened. Server commands read PRIVET_* settings. Client commands use the profile "
    "`privet login` stored, or PRIVET_URL and PRIVET_API_KEY; listings take "
    "--output table|json|yaml. Shell completion: `privet --install-completion`."
)
db_app = group("Database schema migrations.")
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
app.add_typer(members_app, name="members")
app.add_typer(invitations_app, name="invitations")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(base_models_app, name="base-models")
app.add_typer(predictions_app, name="predictions")
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(datasets_app, name="datasets")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")
app.add_typer(reports_app, name="reports")
app.add_typer(dsr_app, name="dsr")
app.add_typer(monitor_app, name="monitor")
app.add_typer(dev_app, name="dev")
app.command("worker")(worker_command)
app.command("predict")(predict_command)
app.command("login")(signin.login)
app.command("logout")(signin.logout)
app.command("whoami")(signin.whoami)
console = Console()

# How long an idle keep-alive connection stays open. uvicorn's 5 s default closes it while a
# client or load balancer (whose idle timeouts are typically 60 s) may be sending its next
# request on it: that request is reset unanswered. Outlive them instead.
KEEP_ALIVE_S = 75


@app.callback()
def main(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            envvar="PRIVET_PROFILE",
            help="Use this `privet login` profile (beats PRIVET_URL / PRIVET_API_KEY).",
        ),
    ] = None,
) -> None:
    """privet: fine-tune and serve text models on sensitive data, with proof of what
    happened. Server commands read PRIVET_* settings. Client commands use the profile
    `privet login` stored, or PRIVET_URL and PRIVET_API_KEY; listings and records take
    --output table|json|yaml. Shell completion: `privet --install-completion`."""
    profiles.select(profile)


def _prepare(settings: Settings) -> str | None:
    """Migrate an empty database, create local key files, and bootstrap the first admin.

    Returns the one-time admin API key when one was created."""
    from privet import migrate
    from privet.auth import service as auth_service
    from privet.datasets.upload import clean_at_start
    from privet.db import get_engine, session_scope, startup_lock
    from privet.kit.secretfiles import ensure_private_dir
    from privet.runtime import build_runtime

    ensure_private_dir(settings.home)
    engine = get_engine(settings.effective_database_url)
    with startup_lock(engine):
        if migrate.current_revision(engine) is None:
            migrate.upgrade(engine)
        elif not migrate.is_current(engine):
            console.print(
                "[red]error:[/] the database schema is behind this version of privet. "
                "Run `privet db upgrade` (back up the database first)."
            )
            raise typer.Exit(1)
        runtime = build_runtime(settings)
        clean_at_start(settings)
        with session_scope(runtime.engine) as session:
            if auth_service.has_platform_admin(session):
                return None
            admin = auth_service.bootstrap_admin(session)
            created = auth_service.create_api_key(
                session,
                pepper=runtime.api_key_pepper,
                principal_id=admin.id,
                name="bootstrap admin",
                ttl_days=settings.api_key_ttl_days,
                actor=admin.id,
            )
    return created.key


def _show_bootstrap_key(key: str) -> None:
    console.rule("admin API key")
    console.print(f"export PRIVET_API_KEY={key}", soft_wrap=True, highlight=False)
    console.print("Shown once and stored only as a digest: keep it safe.")
    console.rule()


@app.command()
def init() -> None:
    """Create PRIVET_HOME, the database schema, local key files and the first admin key."""
    settings = get_settings()
    key = _prepare(settings)
    console.print(f"privet home: {settings.home}")
    if key:
        _show_bootstrap_key(key)
    else:
        console.print(
            "already initialised (an admin exists); "
            "`privet keys create-admin` mints another admin key"
        )


def _server_settings() -> Settings:
    """The core settings, or exit 1 naming each bad PRIVET_* variable and why: a bad value
    is refused before anything starts, in a line, not a traceback."""
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "PRIVET_" + "_".join(str(part) for part in error["loc"]).upper()
            console.print(
                f"[red]error:[/] {name}={error.get('input')!r}: {error['msg']}",
                soft_wrap=True,
                highlight=False,
            )
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (PRIVET_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PRIVET_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes.")] = 1,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not start the local training worker.")
    ] = False,
) -> None:
    """Run the gateway (migrating an empty database and creating keys on first start)."""
    import uvicorn

    from privet.cli.worker import LocalWorker, device_problem
    from privet.jobs.settings import get_job_settings
    from privet.kit import logs

    settings = _server_settings()
    logs.configure(settings.log_level)
    problem = device_problem(training=not no_worker, serving=True)
    if problem:
        console.print(f"[red]error:[/] {problem}")
        raise typer.Exit(1)
    key = _prepare(settings)
    if key:
        _show_bootstrap_key(key)
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"privet serving on http://{bind_host}:{bind_port} (home {settings.home})")
    local_worker = None
    if not no_worker:
        local_worker = LocalWorker(restart_after_s=get_job_settings().local_worker_restart_s)
        local_worker.start()
    try:
        uvicorn.run(
            "privet.console.gateway:create_gateway",  # the API at /v1, the console at /
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_config=None,
            access_log=False,
            # Workers import torch before answering; on a busy small machine that can take
            # far longer than uvicorn's 5 s default, which would kill them in a loop.
            timeout_worker_healthcheck=120,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    finally:
        if local_worker is not None:
            local_worker.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from privet import migrate
    from privet.db import get_engine
    from privet.kit.secretfiles import ensure_private_dir

    settings = get_settings()
    ensure_private_dir(settings.home)
    engine = get_engine(settings.effective_database_url)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    console.print(f"database at {migrate.current_revision(engine)} (was {before})")


@keys_app.command("create-admin")
def keys_create_admin(
    name: Annotated[str, typer.Option(help="Name of the new admin principal.")] = "admin",
) -> None:
    """Create another platform admin and print its API key once (server-side command)."""
    from privet import migrate
    from privet.auth import service as auth_service
    from privet.db import session_scope
    from privet.runtime import build_runtime

    settings = get_settings()
    runtime = build_runtime(settings)
    if not migrate.is_current(runtime.engine):
        console.print(
            "[red]error:[/] the database is not initialised or not current: "
            "run `privet init` or `privet db upgrade` first"
        )
        raise typer.Exit(1)
    with session_scope(runtime.engine) as session:
        admin = auth_service.bootstrap_admin(session, name=name)
        created = auth_service.create_api_key(
            session,
            pepper=runtime.api_key_pepper,
            principal_id=admin.id,
            name=f"{name} admin key",
            ttl_days=settings.api_key_ttl_days,
            actor=admin.id,
        )
    _show_bootstrap_key(created.key)
