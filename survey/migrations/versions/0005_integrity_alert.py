"""integrity_alert: warnings to the level above a unit (codes issued beyond the frame, answered in bursts)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

import survey.db.types
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrity_alert",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("wave.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("addressed_to", sa.Integer(), sa.ForeignKey("unit.id"), nullable=True),
        sa.Column("field_id", sa.Integer(), sa.ForeignKey("field.id"), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("codes_issued", sa.Integer(), nullable=True),
        sa.Column("transactions", sa.Integer(), nullable=True),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("raised_at", survey.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", survey.db.types.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_integrity_alert_wave_id", "integrity_alert", ["wave_id"])
    op.create_index("ix_integrity_alert_unit_id", "integrity_alert", ["unit_id"])


def downgrade() -> None:
    op.drop_table("integrity_alert")
