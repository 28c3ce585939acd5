"""Who may sign in to the chat UI, and the automated raters' API tokens.

Decisions:
- Users live in a YAML file (``$TUNEDESK_HOME/users.yaml``, or ``TUNEDESK_USERS_FILE``) that
  ``tunedesk users add`` edits, plus read-only users from ``TUNEDESK_USERS`` (JSON, for a secret store or
  a container). Passwords are stored only as argon2id hashes (argon2-cffi, OWASP's first choice).
- Roles: ``agent`` chats, rates and reviews; ``admin`` also exports ratings and sees the admin page.
- API tokens (``td_`` + 256 random bits) are shown once and stored as SHA-256: with that much entropy a
  slow hash adds nothing, and a lookup must be fast on every API call.
- The file is written atomically with mode 0600; a malformed file is an error naming the file and field.
- A fresh install has no users, and ``make chat`` must still be usable: the first start creates ``admin``
  with a random password written to ``$TUNEDESK_HOME/initial-admin-password`` (0600), never to a log.
- Chainlit signs its session cookies with ``CHAINLIT_AUTH_SECRET``; unset, one is generated once into
  ``$TUNEDESK_HOME/chainlit-auth-secret`` (0600) so sessions survive restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import load_yaml, write_text_atomically
from tunedesk.settings import Settings

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = ("agent", "admin")
TOKEN_PREFIX = "td_"
_hasher = PasswordHasher()
# verified against when the user is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class ApiToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    label: str = ""


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role = "agent"
    password: str | None = Field(default=None, description="argon2id hash; None: API tokens only")
    tokens: list[ApiToken] = []


class Signed(BaseModel):
    """A user who proved who they are."""

    name: str
    role: Role


def users_file(settings: Settings) -> Path:
    return settings.users_file or settings.home / "users.yaml"


def load(path: Path) -> dict[str, User]:
    """The users in ``path`` (none when it does not exist)."""
    if not path.is_file():
        return {}
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("users", {}), dict):
        raise ConfigError(f"{path}: expected a mapping 'users: {{name: {{role, password}}}}'")
    return _validated(raw.get("users") or {}, str(path))


def _validated(raw: dict, where: str) -> dict[str, User]:
    users = {}
    for name, entry in raw.items():
        try:
            users[str(name)] = User.model_validate(entry or {})
        except ValidationError as exc:
            field, message = validation_problems(exc)[0]
            raise ConfigError(f"{where}: user {name!r}, field {field or 'entry'}: {message}") from None
    return users


def save(path: Path, users: dict[str, User]) -> None:
    document = {"users": {name: user.model_dump(mode="json", exclude_defaults=True) for name, user in users.items()}}
    header = "# tunedesk users: edit with `tunedesk users add|remove|token`; passwords are argon2id hashes\n"
    write_text_atomically(path, header + yaml.safe_dump(document, sort_keys=True), mode=0o600)


def all_users(settings: Settings) -> dict[str, User]:
    """The file's users, then ``TUNEDESK_USERS`` (which wins on a name clash: it is the deployment's)."""
    users = load(users_file(settings))
    users.update(_validated(settings.users, "TUNEDESK_USERS"))
    return users


def current_role(settings: Settings, name: str) -> Role:
    """``name``'s role as the users file says now (a demotion takes effect at once); unknown names
    (Entra ID users the file does not list) are agents."""
    known = all_users(settings).get(name)
    return known.role if known else "agent"


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ConfigError("a password needs at least 8 characters")
    return _hasher.hash(password)


def add(settings: Settings, name: str, password: str, role: Role) -> bool:
    """Create ``name`` or reset their password and role; True when the user is new."""
    if not name.strip() or name != name.strip():
        raise ConfigError(f"user name {name!r}: no leading or trailing spaces, not empty")
    path = users_file(settings)
    users = load(path)
    existing = users.get(name)
    users[name] = User(role=role, password=hash_password(password), tokens=existing.tokens if existing else [])
    save(path, users)
    return existing is None


def remove(settings: Settings, name: str) -> None:
    path = users_file(settings)
    users = load(path)
    if name not in users:
        raise ConfigError(f"{path}: no user {name!r}")
    del users[name]
    save(path, users)


def new_token(settings: Settings, name: str, label: str = "") -> str:
    """A fresh API token for ``name`` (shown once; only its hash is kept)."""
    path = users_file(settings)
    users = load(path)
    if name not in users:
        raise ConfigError(f"{path}: no user {name!r}; add one first with `tunedesk users add {name}`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    users[name].tokens.append(ApiToken(sha256=digest, created_at=datetime.now(UTC), label=label))
    save(path, users)
    return token


def check_password(settings: Settings, name: str, password: str) -> Signed | None:
    user = all_users(settings).get(name)
    stored = user.password if user and user.password else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return Signed(name=name, role=user.role) if user and user.password else None


def check_token(settings: Settings, token: str) -> Signed | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    for name, user in all_users(settings).items():
        if any(hmac.compare_digest(digest, known.sha256) for known in user.tokens):
            return Signed(name=name, role=user.role)
    return None


def ensure_first_admin(settings: Settings) -> Path | None:
    """On a fresh install, create ``admin`` and return the file holding its password; else None."""
    if all_users(settings):
        return None
    password = secrets.token_urlsafe(12)
    add(settings, "admin", password, "admin")
    where = settings.home / "initial-admin-password"
    write_text_atomically(where, password + "\n", mode=0o600)
    return where


def ensure_auth_secret(settings: Settings) -> None:
    """Set ``CHAINLIT_AUTH_SECRET`` from the home (created once) unless the environment has one."""
    if os.environ.get("CHAINLIT_AUTH_SECRET"):
        return
    path = settings.home / "chainlit-auth-secret"
    if not path.is_file():
        write_text_atomically(path, secrets.token_urlsafe(48) + "\n", mode=0o600)
    os.environ["CHAINLIT_AUTH_SECRET"] = path.read_text(encoding="utf-8").strip()
