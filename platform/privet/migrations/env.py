"""Alembic environment: runs against the connection or URL that privet.migrate passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool
from sqlmodel import SQLModel

from privet.db import create_db_engine

config = context.config
connection = config.attributes.get("connection")
target_metadata = SQLModel.metadata


def run_online() -> None:
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    engine.pool = pool.NullPool(engine.pool._creator)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_online()
