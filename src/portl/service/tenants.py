"""Tenants and their API keys, as the admin commands and (later) the API use them.

Creating a tenant or a key returns the key once; only its prefix and hash are kept. ``verify``
is what the API calls with each request's key: it answers who is calling, or raises
:class:`~portl.errors.KeyRefused`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portl.connectors.closest import closest
from portl.errors import ConfigError, KeyRefused, ServiceError
from portl.secrets import MASK
from portl.service import apikeys
from portl.service.db import WRITE_LOCK
from portl.service.models import ApiKey, Tenant, now

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ALLOWANCES = ("local_files", "code_hooks", "private_network")
"""What an admin can allow a tenant's jobs: read local files, run code hooks, reach private addresses."""
MAX_LIMIT = 2**31 - 1
LAST_USED_STEP_S = 60
"""A key's ``last_used_at`` is written at most this often."""
"""The largest limit a tenant can have: the columns are 32-bit integers."""


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only time the whole key is known."""

    tenant: str
    prefix: str
    api_key: str = field(repr=False)

    def __repr__(self) -> str:
        return f"NewKey(tenant={self.tenant!r}, prefix={self.prefix!r}, api_key={MASK!r})"


@dataclass(frozen=True)
class TenantInfo:
    """A tenant as listings show it: never a key."""

    id: int
    name: str
    created_at: datetime
    local_files: bool
    code_hooks: bool
    private_network: bool
    max_running_jobs: int
    requests_per_minute: int
    live_keys: int

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat(),
                "allowed": {a: getattr(self, a) for a in ALLOWANCES},
                "max_running_jobs": self.max_running_jobs, "requests_per_minute": self.requests_per_minute,
                "live_keys": self.live_keys}


@dataclass(frozen=True)
class KeyInfo:
    """A key as listings show it: its prefix and dates, never the key or its hash."""

    prefix: str
    tenant: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "tenant": self.tenant, "created_at": self.created_at.isoformat(),
                "last_used_at": _iso(self.last_used_at), "revoked_at": _iso(self.revoked_at)}


@dataclass(frozen=True)
class Caller:
    """Who presented a valid key: the tenant the request acts for, and what it is allowed."""

    tenant_id: int
    tenant: str
    key_prefix: str
    local_files: bool
    code_hooks: bool
    private_network: bool
    requests_per_minute: int = 600


class Tenants:
    """The tenants and keys of one state database (a session factory on it)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def create(self, name: str) -> NewKey:
        """A new tenant, allowed nothing yet, with its first key."""
        if not _NAME.match(name):
            raise ConfigError(f"tenant name {name!r} is not usable: use 1 to 100 letters, digits, '_', '.' or '-', "
                              "starting with a letter or digit")
        with self._sessions() as session:
            if self._find(session, name) is not None:
                raise _taken(name)
            tenant = Tenant(name=name, allow_local_files=False, allow_code_hooks=False, allow_private_network=False)
            session.add(tenant)
            try:
                session.flush()
            except IntegrityError as exc:  # created by someone else since we looked
                raise _taken(name) from exc
            made = self._add_key(session, tenant)
            session.commit()
            return made

    def list(self) -> list[TenantInfo]:
        """Every tenant, by name."""
        live = (select(ApiKey.tenant_id, func.count().label("n")).where(ApiKey.revoked_at.is_(None))
                .group_by(ApiKey.tenant_id).subquery())
        with self._sessions() as session:
            rows = session.execute(select(Tenant, func.coalesce(live.c.n, 0)).outerjoin(live, live.c.tenant_id == Tenant.id)
                                   .order_by(Tenant.name)).all()
            return [_tenant_info(tenant, keys) for tenant, keys in rows]

    def allow(self, name: str, **allowances: bool | None) -> TenantInfo:
        """Allow (True) or withdraw (False) some of ``ALLOWANCES``; None leaves one as it is."""
        unknown = set(allowances) - set(ALLOWANCES)
        if unknown:
            raise ValueError(f"unknown allowances {sorted(unknown)}; expected some of {ALLOWANCES}")
        with self._sessions() as session:
            tenant = self._require(session, name)
            for allowance, value in allowances.items():
                if value is not None:
                    setattr(tenant, f"allow_{allowance}", value)
            session.commit()
            return _tenant_info(tenant, self._live_keys(session, tenant.id))

    def set_limits(self, name: str, *, max_running_jobs: int | None = None,
                   requests_per_minute: int | None = None) -> TenantInfo:
        """Change a tenant's limits; None leaves one as it is. Each is a whole number from 1 up."""
        for option, value in (("max running jobs", max_running_jobs), ("requests per minute", requests_per_minute)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= MAX_LIMIT):
                raise ConfigError(f"{option} must be a whole number from 1 to {MAX_LIMIT:,}; got {value!r}")
        with self._sessions() as session:
            tenant = self._require(session, name)
            if max_running_jobs is not None:
                tenant.max_running_jobs = max_running_jobs
            if requests_per_minute is not None:
                tenant.requests_per_minute = requests_per_minute
            session.commit()
            return _tenant_info(tenant, self._live_keys(session, tenant.id))

    def create_key(self, tenant_name: str) -> NewKey:
        """Another key for a tenant; its other keys stay valid."""
        with self._sessions() as session:
            made = self._add_key(session, self._require(session, tenant_name))
            session.commit()
            return made

    def keys(self, tenant_name: str) -> list[KeyInfo]:
        """A tenant's keys, oldest first, revoked ones included."""
        with self._sessions() as session:
            tenant = self._require(session, tenant_name)
            keys = session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.created_at, ApiKey.id))
            return [_key_info(key, tenant.name) for key in keys]

    def revoke(self, prefix: str) -> tuple[KeyInfo, bool]:
        """Revoke a key at once; returns it and whether this call revoked it (False: it already was)."""
        with self._sessions() as session:
            key, tenant = self._require_key(session, prefix)
            newly = key.revoked_at is None
            if newly:
                key.revoked_at = now()
                session.commit()
            return _key_info(key, tenant.name), newly

    def rotate(self, prefix: str) -> NewKey:
        """A new key for the tenant of a live key, and that key revoked, in one transaction."""
        with self._sessions() as session:
            key, tenant = self._require_key(session, prefix)
            if key.revoked_at is not None:
                raise ServiceError(f"API key {prefix} was revoked on {key.revoked_at:%Y-%m-%d %H:%M} UTC, so there is "
                                   f"nothing to rotate; make a new key with `portl keys create {tenant.name}`")
            key.revoked_at = now()
            made = self._add_key(session, tenant)
            session.commit()
            return made

    def verify(self, presented: str) -> Caller:
        """The caller a presented key stands for; a malformed, unknown, wrong or revoked key is refused.
        Records when the key was last used, to the minute (:data:`LAST_USED_STEP_S`): a write per
        request would cost every request a commit."""
        prefix = apikeys.prefix_of(presented)
        if prefix is None:
            raise KeyRefused(f"not a Portl API key: a key looks like {apikeys.KIND}xxxxxxxx_ followed by 43 characters")
        with self._sessions() as session:
            row = session.execute(select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id)
                                  .where(ApiKey.prefix == prefix)).first()
            # An unknown prefix is checked against a hash all the same, so that its answer takes as long.
            stored = row.ApiKey.secret_hash if row else apikeys.hash_key(prefix)
            if not apikeys.matches(presented, stored) or row is None:
                raise KeyRefused(f"API key {prefix} is not valid")
            key, tenant = row.ApiKey, row.Tenant
            if key.revoked_at is not None:
                raise KeyRefused(f"API key {prefix} was revoked on {key.revoked_at:%Y-%m-%d %H:%M} UTC")
            caller = Caller(tenant.id, tenant.name, prefix, tenant.allow_local_files, tenant.allow_code_hooks,
                            tenant.allow_private_network, tenant.requests_per_minute)
            moment, key_id, last = now(), key.id, key.last_used_at
        if last is None or (moment - last).total_seconds() >= LAST_USED_STEP_S:
            with self._sessions() as session:  # on SQLite a write takes the lock as its transaction begins
                session.connection(execution_options={WRITE_LOCK: True})
                session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=moment))
                session.commit()
        return caller

    # --- lookups -----------------------------------------------------------------------------

    @staticmethod
    def _find(session: Session, name: str) -> Tenant | None:
        return session.scalars(select(Tenant).where(Tenant.name == name)).first()

    def _require(self, session: Session, name: str) -> Tenant:
        tenant = self._find(session, name)
        if tenant is not None:
            return tenant
        names = list(session.scalars(select(Tenant.name)))
        near = closest(name, names)
        if near:
            hint = "; did you mean " + " or ".join(f"'{n}'" for n in near) + "?"
        elif names:
            hint = "; `portl tenants list` lists them"
        else:
            hint = "; there are no tenants yet: `portl tenants create NAME` makes one"
        raise ServiceError(f"no tenant named {name!r}{hint}")

    @staticmethod
    def _require_key(session: Session, prefix: str) -> tuple[ApiKey, Tenant]:
        row = session.execute(select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id)
                              .where(ApiKey.prefix == prefix.strip())).first()
        if row is None:
            raise ServiceError(f"no API key with prefix {prefix!r}: a prefix looks like {apikeys.KIND}xxxxxxxx; "
                               "`portl keys list TENANT` lists a tenant's keys")
        return row.ApiKey, row.Tenant

    @staticmethod
    def _live_keys(session: Session, tenant_id: int) -> int:
        return session.scalar(select(func.count()).select_from(ApiKey)
                              .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))) or 0

    @staticmethod
    def _add_key(session: Session, tenant: Tenant) -> NewKey:
        made = apikeys.make_key()
        session.add(ApiKey(tenant_id=tenant.id, prefix=made.prefix, secret_hash=made.secret_hash))
        return NewKey(tenant.name, made.prefix, made.key)


def _taken(name: str) -> ServiceError:
    return ServiceError(f"a tenant named {name!r} already exists; `portl keys create {name}` makes it another key")


def _tenant_info(tenant: Tenant, live_keys: int) -> TenantInfo:
    return TenantInfo(tenant.id, tenant.name, tenant.created_at, tenant.allow_local_files, tenant.allow_code_hooks,
                      tenant.allow_private_network, tenant.max_running_jobs, tenant.requests_per_minute, live_keys)


def _key_info(key: ApiKey, tenant: str) -> KeyInfo:
    return KeyInfo(key.prefix, tenant, key.created_at, key.last_used_at, key.revoked_at)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
