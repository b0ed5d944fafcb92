"""Users and API tokens: created, listed, disabled, revoked — and checked on every request.

Every change is audited in the same transaction, and so is every failed login. Secrets never
reach the store in the clear (scrypt for passwords, SHA-256 for random token secrets) and
never reach a log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ...schemas.access import ApiToken, IssuedToken, Role, User, UserSpec
from ..areascope import covered_areas
from ..config import ApiSettings
from ..errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from ..registry import Registry
from ..store import Store
from ..store.tables import ApiTokenRow, UserRow
from .credentials import check_password, hash_password, new_token, parse_token, same_secret
from .policy import Principal

log = structlog.get_logger("ttcs.access")

#: how often a token's last use is written (a write per request would be wasteful)
LAST_USED_EVERY = timedelta(seconds=60)


def _user(row: UserRow) -> User:
    return User(name=row.name, role=Role(row.role), area_code=row.area_code,
                plugins=list(row.plugins or []), approver=row.approver, disabled=row.disabled,
                has_password=row.password_hash is not None, created_by=row.created_by,
                created_at=row.created_at)


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(id=row.id, user=row.user_name, label=row.label, kind=row.kind,
                    created_at=row.created_at, expires_at=row.expires_at,
                    revoked_at=row.revoked_at, last_used_at=row.last_used_at)


class Accounts:
    """The ``hub.accounts`` service."""

    def __init__(self, store: Store, registry: Registry, settings: ApiSettings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        registry.merge_hooks.append(self._follow_merge)

    # -- users --------------------------------------------------------------------------------

    async def add_user(self, spec: UserSpec, actor: str) -> User:
        if spec.area_code is not None:
            await self.registry.get_area(spec.area_code)
        if spec.approver is not None:
            from ..store.tables import ApproverRow

            async with self.store.sessions() as s:
                if await s.get(ApproverRow, spec.approver) is None:
                    raise NotFound(f"no approver '{spec.approver}' (add it with `ttcs "
                                   "approvers add`)")
        password = spec.password.get_secret_value() if spec.password else None
        hashed = await asyncio.to_thread(hash_password, password) if password else None
        async with self.store.sessions.begin() as s:
            if await s.get(UserRow, spec.name) is not None:
                raise Conflict(f"user '{spec.name}' exists already")
            row = UserRow(name=spec.name, role=spec.role.value, area_code=spec.area_code,
                          plugins=sorted(spec.plugins), approver=spec.approver,
                          password_hash=hashed,
                          disabled=False, created_by=actor)
            s.add(row)
            await s.flush()
            await self.store.audit.record(actor, "user.add", spec.name, session=s, detail={
                "role": spec.role.value, "area": spec.area_code, "plugins": spec.plugins,
                "approver": spec.approver, "password": password is not None})
        log.info("user.added", user=spec.name, role=spec.role.value, area=spec.area_code)
        return _user(row)

    async def get_user(self, name: str) -> User:
        async with self.store.sessions() as s:
            row = await s.get(UserRow, name)
        if row is None:
            raise NotFound(f"no user '{name}' (see `ttcs users list`)")
        return _user(row)

    async def list_users(self, *, area: str | None = None, role: str | None = None,
                         limit: int | None = None, offset: int = 0) -> list[User]:
        """Users, by name; ``area`` keeps those scoped to that area or below it."""
        query = select(UserRow).order_by(UserRow.name).offset(offset)
        if area is not None:
            query = query.where(UserRow.area_code.in_(covered_areas(area)))
        if role is not None:
            query = query.where(UserRow.role == role)
        if limit is not None:
            query = query.limit(limit)
        async with self.store.sessions() as s:
            return [_user(r) for r in (await s.execute(query)).scalars()]

    async def set_disabled(self, name: str, disabled: bool, actor: str) -> User:
        """Disable (every token stops working at once) or enable a user."""
        async with self.store.sessions.begin() as s:
            row = await s.get(UserRow, name)
            if row is None:
                raise NotFound(f"no user '{name}'")
            row.disabled = disabled
            await self.store.audit.record(actor, "user.disable" if disabled else "user.enable",
                                          name, session=s)
        return _user(row)

    async def set_password(self, name: str, password: SecretStr, actor: str) -> None:
        if len(password.get_secret_value()) < 12:
            raise InvalidInput("a password needs at least 12 characters")
        hashed = await asyncio.to_thread(hash_password, password.get_secret_value())
        async with self.store.sessions.begin() as s:
            row = await s.get(UserRow, name)
            if row is None:
                raise NotFound(f"no user '{name}'")
            row.password_hash = hashed
            await self.store.audit.record(actor, "user.password", name, session=s)

    async def _follow_merge(self, sources: Sequence[str], into: str, session: AsyncSession
                            ) -> None:
        """Accounts of merged areas keep working for the area they joined."""
        await session.execute(update(UserRow).where(UserRow.area_code.in_(list(sources)))
                              .values(area_code=into))

    # -- tokens -------------------------------------------------------------------------------

    async def create_token(self, user: str, actor: str, *, label: str = "api",
                           days: float | None = None, kind: str = "api") -> IssuedToken:
        """A new token for ``user``; the returned secret is never stored or shown again."""
        days = self.settings.token_days if days is None else days
        now = datetime.now(UTC)
        token_id, secret, hashed = new_token()
        async with self.store.sessions.begin() as s:
            owner = await s.get(UserRow, user)
            if owner is None:
                raise NotFound(f"no user '{user}' (create it with `ttcs users add`)")
            if owner.disabled:
                raise Conflict(f"user '{user}' is disabled")
            row = ApiTokenRow(id=token_id, user_name=user, label=label, kind=kind,
                              secret_hash=hashed, created_at=now,
                              expires_at=now + timedelta(days=days))
            s.add(row)
            await s.flush()
            await self.store.audit.record(actor, "token.create", token_id, session=s, detail={
                "user": user, "label": label, "kind": kind,
                "expires_at": row.expires_at.isoformat()})
        return IssuedToken(token=secret, info=_token(row))

    async def get_token(self, token_id: str) -> ApiToken:
        async with self.store.sessions() as s:
            row = await s.get(ApiTokenRow, token_id)
        if row is None:
            raise NotFound(f"no token '{token_id}' (see `ttcs tokens list`)")
        return _token(row)

    async def list_tokens(self, *, user: str | None = None, area: str | None = None,
                          active: bool = False, limit: int | None = None, offset: int = 0
                          ) -> list[ApiToken]:
        """Tokens, newest first; ``area`` keeps those of users scoped to that area or below."""
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at.desc(),
                                             ApiTokenRow.id).offset(offset)
        if user is not None:
            query = query.where(ApiTokenRow.user_name == user)
        if area is not None:
            query = query.where(ApiTokenRow.user_name.in_(
                select(UserRow.name).where(UserRow.area_code.in_(covered_areas(area)))))
        if active:
            query = query.where(ApiTokenRow.revoked_at.is_(None),
                                ApiTokenRow.expires_at > datetime.now(UTC))
        if limit is not None:
            query = query.limit(limit)
        async with self.store.sessions() as s:
            return [_token(r) for r in (await s.execute(query)).scalars()]

    async def revoke_token(self, token_id: str, actor: str, *, owner: str | None = None
                           ) -> ApiToken:
        """Revoke a token (only one of ``owner``'s, when given)."""
        async with self.store.sessions.begin() as s:
            row = await s.get(ApiTokenRow, token_id)
            if row is None or (owner is not None and row.user_name != owner):
                raise NotFound(f"no token '{token_id}'")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            await self.store.audit.record(actor, "token.revoke", token_id, session=s,
                                          detail={"user": row.user_name})
        return _token(row)

    # -- checking credentials -----------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for, or :class:`NotAuthenticated` (saying why in
        terms that give an attacker nothing: unknown and wrong secrets read the same)."""
        parsed = parse_token(token)
        if parsed is None:
            raise NotAuthenticated("the token is malformed (expected ttcs_<id>_<secret>)")
        token_id, secret = parsed
        now = datetime.now(UTC)
        async with self.store.sessions() as s:
            row = await s.get(ApiTokenRow, token_id)
            user = await s.get(UserRow, row.user_name) if row is not None else None
        if row is None or user is None or not same_secret(secret, row.secret_hash):
            raise NotAuthenticated("the token is not valid")
        if row.revoked_at is not None:
            raise NotAuthenticated("the token was revoked")
        if row.expires_at <= now:
            raise NotAuthenticated("the token has expired; ask for a new one")
        if user.disabled:
            raise NotAuthenticated(f"user '{user.name}' is disabled")
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
            async with self.store.sessions.begin() as s:
                await s.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id)
                                .values(last_used_at=now))
        return Principal(name=user.name, role=Role(user.role), area_code=user.area_code,
                         plugins=frozenset(user.plugins or []), approver=user.approver,
                         token_id=token_id)

    async def login(self, name: str, password: SecretStr, source: str) -> IssuedToken:
        """Check a password and hand out a session token; a failure is audited."""
        async with self.store.sessions() as s:
            row = await s.get(UserRow, name)
        ok = await asyncio.to_thread(check_password, password.get_secret_value(),
                                     row.password_hash if row else None)
        if not ok or row is None or row.disabled:
            reason = ("disabled" if ok and row is not None else "bad credentials")
            await self.store.audit.record(f"user:{name}", "auth.login", name, outcome="denied",
                                          detail={"source": source, "reason": reason})
            log.warning("auth.login_failed", user=name, source=source)
            raise NotAuthenticated("wrong user name or password")
        return await self.create_token(name, f"user:{name}", label=f"login from {source}",
                                       days=self.settings.session_hours / 24, kind="session")

    async def login_refused(self, name: str, source: str, reason: str) -> None:
        """Record a login refused before its password was looked at (rate limit)."""
        await self.store.audit.record(f"user:{name}", "auth.login", name, outcome="denied",
                                      detail={"source": source, "reason": reason})
