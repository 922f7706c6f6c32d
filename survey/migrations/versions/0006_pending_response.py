"""pending_response: the mixing buffer between a citizen's submission and the response table

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa

import survey.db.types
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_response",
        sa.Column("submission_key", sa.String(64), primary_key=True),
        sa.Column("wave_id", sa.Integer(), sa.ForeignKey("wave.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("unit.id"), nullable=False),
        sa.Column("service_point_id", sa.Integer(), sa.ForeignKey("service_point.id"), nullable=True),
        sa.Column("field_id", sa.Integer(), sa.ForeignKey("field.id"), nullable=True),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("questionnaire_version_id", sa.Integer(), sa.ForeignKey("questionnaire_version.id"), nullable=False),
        sa.Column("submitted_at", survey.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.LargeBinary(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("flags", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    # answers still waiting are moved into response first, so going down loses none of them
    op.execute(
        "INSERT INTO response (wave_id, unit_id, service_point_id, field_id, channel, questionnaire_version_id, "
        "submitted_at, answers, comment, flags, submission_key) "
        "SELECT wave_id, unit_id, service_point_id, field_id, channel, questionnaire_version_id, "
        "submitted_at, answers, comment, flags, submission_key FROM pending_response "
        "WHERE submission_key NOT IN (SELECT submission_key FROM response WHERE submission_key IS NOT NULL)"
    )
    op.drop_table("pending_response")
