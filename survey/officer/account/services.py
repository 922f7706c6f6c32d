"""The transactions of the account page (the session store's part is ``survey.auth.session_index``)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.auth import services as accounts
from survey.db.models import User


def change_own_password(engine: Engine, *, user_id: int, current: str, new: str) -> User:
    """Check the current password and store the new one's hash, in one committed transaction (audited)."""
    with Session(engine, expire_on_commit=False) as session:
        user = accounts.change_own_password(session, user_id=user_id, current=current, new=new)
        session.commit()
        return user
