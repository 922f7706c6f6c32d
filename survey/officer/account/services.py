"""The transactions of the account page: password and second factor (sessions: ``survey.auth.session_index``)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.auth import second_factor
from survey.auth import services as accounts
from survey.db.models import User


def change_own_password(engine: Engine, *, user_id: int, current: str, new: str) -> User:
    """Check the current password and store the new one's hash, in one committed transaction (audited)."""
    with Session(engine, expire_on_commit=False) as session:
        user = accounts.change_own_password(session, user_id=user_id, current=current, new=new)
        session.commit()
        return user


def second_factor_enabled(engine: Engine, *, user_id: int) -> bool:
    with Session(engine) as session:
        user = session.get(User, user_id)
        return user is not None and second_factor.enabled(user)


def enable_second_factor(engine: Engine, *, user_id: int, secret: str, code: str, key: str) -> None:
    """Store the enrolled secret once ``code`` matches it (raises ``WrongCode`` otherwise); audited."""
    with Session(engine) as session:
        second_factor.enable(session, user_id=user_id, secret=secret, code=code, key=key)
        session.commit()


def disable_second_factor(engine: Engine, *, user_id: int, code: str, key: str, actor: str) -> None:
    """Turn the account's second factor off after one more good code (raises ``WrongCode`` otherwise); audited."""
    with Session(engine) as session:
        second_factor.check_code(session, user_id=user_id, code=code, key=key)
        second_factor.disable(session, user_id=user_id, actor=actor, actor_id=user_id)
        session.commit()
