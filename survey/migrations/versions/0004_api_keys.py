"""api_key and issued_transaction: the issuing API for one-stop systems

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

import survey.db.types
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("scopes", sa.String(60), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", survey.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_on", sa.Date(), nullable=True),
        sa.Column("revoked_at", survey.db.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "issued_transaction",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("wave.id"), nullable=False),
        sa.Column("ref_hash", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("field_id", sa.Integer(), sa.ForeignKey("field.id"), nullable=True),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("asked_on", sa.Date(), nullable=False),
        sa.UniqueConstraint("wave_id", "ref_hash"),
    )
    op.create_index("ix_issued_transaction_wave_id", "issued_transaction", ["wave_id"])
    op.create_index("ix_issued_transaction_unit_id", "issued_transaction", ["unit_id"])


def downgrade() -> None:
    op.drop_table("issued_transaction")
    op.drop_table("api_key")
