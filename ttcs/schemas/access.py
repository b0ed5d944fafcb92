"""Accounts of the northbound API: users, their role and area, and API tokens."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, SecretStr, field_serializer, model_validator

from .base import AwareDatetime, Identifier, Model

#: a user name: letters, digits and . _ @ - (an e-mail address fits)
UserName = Annotated[str, Field(min_length=1, max_length=100,
                                pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]


class Role(StrEnum):
    """What a user may do; where is given by the user's area (and everything below it)."""

    ADMINISTRATOR = "administrator"  # everything, users and tokens included
    APPROVER = "approver"  # reads; approves or rejects content
    OPERATOR = "operator"  # reads; content drafts, broadcasts, device commands
    INTEGRATOR = "integrator"  # technician: registers, groups and commands devices; webhooks
    VENDOR = "vendor"  # reads its own devices (by plugin) and their status; never broadcasts
    AUDITOR = "auditor"  # reads everything in scope, the audit log included; changes nothing


class UserSpec(Model):
    """A user to create."""

    name: UserName
    role: Role
    area_code: Identifier | None = Field(default=None, description="scope: this area and "
                                         "everything below it; empty = the whole hub")
    plugins: list[Identifier] = Field(default_factory=list, description="vendor accounts: "
                                      "the plugins whose devices they see")
    approver: str | None = Field(default=None, max_length=200, description="approver "
                                 "accounts: the approver record (signing key) they sign with")
    password: SecretStr | None = Field(default=None, description="for interactive login; "
                                       "at least 12 characters")

    @field_serializer("password")
    def _mask(self, value: SecretStr | None) -> str | None:
        return None if value is None else "**********"

    @model_validator(mode="after")
    def _consistent(self) -> UserSpec:
        if self.role is Role.VENDOR and not self.plugins:
            raise ValueError("a vendor account needs its plugins (the devices it may see)")
        if self.role is not Role.VENDOR and self.plugins:
            raise ValueError("only vendor accounts are limited to plugins")
        if self.role is Role.APPROVER and not self.approver:
            raise ValueError("an approver account needs the approver record it signs as")
        if self.password is not None and len(self.password.get_secret_value()) < 12:
            raise ValueError("a password needs at least 12 characters")
        return self


class User(Model):
    """A user as shown (never a password or its hash)."""

    name: str
    role: Role
    area_code: str | None = None
    plugins: list[str] = Field(default_factory=list)
    approver: str | None = None
    disabled: bool = False
    has_password: bool = False
    created_by: str | None = None
    created_at: AwareDatetime


class TokenSpec(Model):
    """A token to create for a user."""

    user: UserName
    label: str = Field(default="api", min_length=1, max_length=200)
    days: float = Field(default=90, gt=0, le=3660, description="valid for this many days")


class ApiToken(Model):
    """A token as listed: never its secret (only a hash of it is stored)."""

    id: str
    user: str
    label: str
    kind: str = Field(description="'api' (created) or 'session' (from a login)")
    created_at: AwareDatetime
    expires_at: AwareDatetime
    revoked_at: AwareDatetime | None = None
    last_used_at: AwareDatetime | None = None


class IssuedToken(Model):
    """A new token: ``token`` is shown this once and cannot be recovered."""

    token: str = Field(description="send as 'Authorization: Bearer TOKEN'")
    info: ApiToken


class Login(Model):
    user: UserName
    password: SecretStr = Field(max_length=1000)
