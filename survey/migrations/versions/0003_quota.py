"""quota: a wave's sampling plan per stratum (unit x field)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quota",
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("wave.id"), primary_key=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), primary_key=True),
        sa.Column("field_id", sa.Integer(), sa.ForeignKey("field.id"), primary_key=True),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("codes_to_issue", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quota")
