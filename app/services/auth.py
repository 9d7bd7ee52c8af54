"""Accounts, roles, API tokens, and who may do what.

* Passwords are hashed with argon2 (``pwdlib``); API tokens are random (``secrets``) and only
  their SHA-256 is stored, so a leaked database gives neither.
* Roles: an **admin** changes everything; a **member** sees the group's jobs and artifacts
  and changes only its own (submits, cancels and retries its jobs, uploads); a **viewer**
  sees everything and changes nothing.
* The user of the request in progress is kept in a context variable (set by
  ``app.security.AuthGate`` for REST and UI requests alike), so the services the routers
  and the Dash callbacks share check permissions in one place. No user there means no
  accounts are in play: auth is off, or the caller is the operator's own CLI on the server.
"""

from __future__ import annotations

import hashlib
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import ApiToken, User, utcnow

ROLES = ("admin", "member", "viewer")
TOKEN_PREFIX = "esk_"

_hasher = PasswordHash.recommended()  # argon2id


class Forbidden(PermissionError):
    """The current user may not do this (403); the message says why."""


class AuthError(ValueError):
    """A user or token cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a plain value, safe to keep beyond a database session."""

    id: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_current: ContextVar[Principal | None] = ContextVar("eddyscope_user", default=None)


def current_user() -> Principal | None:
    return _current.get()


def set_current_user(user: Principal | None):
    """Returns the reset token for ``reset_current_user``."""
    return _current.set(user)


def reset_current_user(token) -> None:
    _current.reset(token)


def principal(user: User) -> Principal:
    return Principal(id=user.id, name=user.name, role=user.role)


# Permissions ---------------------------------------------------------------------------


def may_change(user: Principal | None, owner_id: str | None) -> bool:
    """Whether ``user`` may change (cancel, retry, edit, delete) something owned by
    ``owner_id``: admins anything, members their own, viewers nothing."""
    if user is None:
        return True
    if user.is_admin:
        return True
    return user.role == "member" and owner_id is not None and owner_id == user.id


def require_create(user: Principal | None = None) -> str | None:
    """Check that the current user (or ``user``) may create jobs and artifacts; returns the
    owner id to give them (None without accounts)."""
    user = user if user is not None else current_user()
    if user is None:
        return None
    if user.role not in ("admin", "member"):
        raise Forbidden(f"{user.name} is a viewer: viewers cannot submit jobs or upload files.")
    return user.id


def require_change(owner_id: str | None, what: str, user: Principal | None = None) -> None:
    user = user if user is not None else current_user()
    if not may_change(user, owner_id):
        if user is not None and user.role == "viewer":
            raise Forbidden(f"{user.name} is a viewer: viewers cannot change {what}.")
        raise Forbidden(f"Only its owner or an admin can change {what}.")


# Users ---------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(session: Session, name: str, password: str, role: str = "member") -> User:
    if role not in ROLES:
        raise AuthError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    name = name.strip()
    if not name or len(name) > 64:
        raise AuthError("A user name is 1 to 64 characters.")
    if len(password) < 8:
        raise AuthError("A password is at least 8 characters.")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AuthError(f"There is already a user named {name!r}.")
    user = User(name=name, password_hash=hash_password(password), role=role)
    session.add(user)
    session.commit()
    return user


def set_role(session: Session, name: str, role: str) -> User:
    if role not in ROLES:
        raise AuthError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AuthError(f"There is no user named {name!r}.")
    user.role = role
    session.commit()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when the name and password match, else None (in about the same time)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        # Hash anyway, so a wrong name takes as long as a wrong password.
        _hasher.verify(password, _DUMMY_HASH)
        return None
    valid, new_hash = _hasher.verify_and_update(password, user.password_hash)
    if not valid:
        return None
    if new_hash is not None:  # the recommended parameters changed: rehash
        user.password_hash = new_hash
        session.commit()
    return user


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


# Tokens --------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user_name: str, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user_name``: the row and the token itself (shown once)."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise AuthError(f"There is no user named {user_name!r}.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name[:64], token_hash=_digest(token))
    session.add(row)
    session.commit()
    return row, token


def revoke_token(session: Session, token_id: str) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # at most one write a minute per token
        session.commit()
    return session.get(User, row.user_id)


def user_by_id(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)
