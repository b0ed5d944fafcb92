"""Login, one's own account and tokens, and (administrators) users and their tokens."""

from __future__ import annotations

from pydantic import Field

from ....schemas import Model
from ....schemas.access import ApiToken, IssuedToken, Login, Role, User, UserSpec
from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ..routing import Call, endpoint
from .common import PageQuery, query_area


class NewToken(Model):
    label: str = Field(default="api", min_length=1, max_length=200)
    days: float | None = Field(default=None, gt=0, le=3660, description="default: the "
                               "hub's api.token_days")


class UserQuery(PageQuery):
    area: Identifier | None = Field(default=None, description="users scoped to this area "
                                    "or below")
    role: Role | None = None


class TokenQuery(PageQuery):
    active: bool = Field(default=False, description="only tokens still valid")


class Me(Model):
    user: User
    token: str | None = Field(default=None, description="id of the token in use")


@endpoint("POST", "/auth/login", tag="accounts", action=None, status=201,
          summary="Log in with a password; returns a session token",
          body=Login, response=IssuedToken, errors=(401, 429))
async def login(call: Call) -> IssuedToken:
    """Rate-limited per user name and per source address (429 with Retry-After). Every
    password that is checked and refused is written to the audit log; of the attempts
    refused by the rate limit, the first one of each lock-out is (a flood of guesses does
    not fill the log, and the lock-out itself is on record)."""
    body: Login = call.body
    api, source = call.api, call.source
    for limiter, key in ((api.logins_by_user, body.user), (api.logins_by_address, source)):
        wait, first = limiter.hit(key)
        if wait is not None:
            if first:
                await call.hub.accounts.login_refused(body.user, source, "rate limited")
            from ...errors import RateLimited

            raise RateLimited(f"too many login attempts; try again in {wait:.0f} s", wait)
    return await call.hub.accounts.login(body.user, body.password, source)


@endpoint("GET", "/me", tag="accounts", action=Action.TOKEN_OWN,
          summary="Who the token belongs to: role and area", response=Me)
async def whoami(call: Call) -> Me:
    return Me(user=await call.hub.accounts.get_user(call.principal.name),
              token=call.principal.token_id)


@endpoint("GET", "/me/tokens", tag="accounts", action=Action.TOKEN_OWN,
          summary="One's own tokens", query=TokenQuery, response=Page[ApiToken])
async def my_tokens(call: Call) -> Page[ApiToken]:
    q: TokenQuery = call.query
    tokens = await call.hub.accounts.list_tokens(user=call.principal.name, active=q.active,
                                                 limit=q.limit + 1, offset=q.offset)
    return call.page(tokens, q.limit, q.offset)


@endpoint("POST", "/me/tokens", tag="accounts", action=Action.TOKEN_OWN, status=201,
          summary="Create a token for oneself (shown once)", body=NewToken,
          response=IssuedToken)
async def create_my_token(call: Call) -> IssuedToken:
    body: NewToken = call.body
    return await call.hub.accounts.create_token(call.principal.name, call.actor,
                                                label=body.label, days=body.days)


@endpoint("DELETE", "/me/tokens/{id}", tag="accounts", action=Action.TOKEN_OWN, status=204,
          summary="Revoke one of one's own tokens")
async def revoke_my_token(call: Call) -> None:
    await call.hub.accounts.revoke_token(call.path["id"], call.actor,
                                         owner=call.principal.name)


@endpoint("GET", "/users", tag="accounts", action=Action.USER_READ, summary="List users",
          query=UserQuery, response=Page[User], target=query_area)
async def list_users(call: Call) -> Page[User]:
    q: UserQuery = call.query
    users = await call.hub.accounts.list_users(area=await call.area_filter(q.area),
                                               role=q.role.value if q.role else None,
                                               limit=q.limit + 1, offset=q.offset)
    return call.page(users, q.limit, q.offset)


async def _new_user(call: Call) -> Target:
    return Target.of([call.body.area_code])


@endpoint("POST", "/users", tag="accounts", action=Action.USER_WRITE, status=201,
          summary="Create a user (scoped to an area inside one's own)", body=UserSpec,
          response=User, target=_new_user)
async def add_user(call: Call) -> User:
    return await call.hub.accounts.add_user(call.body, call.actor)


async def _user(call: Call) -> Target:
    return Target.of([(await call.hub.accounts.get_user(call.path["name"])).area_code])


@endpoint("GET", "/users/{name}", tag="accounts", action=Action.USER_READ,
          summary="One user", response=User, target=_user)
async def get_user(call: Call) -> User:
    return await call.hub.accounts.get_user(call.path["name"])


@endpoint("POST", "/users/{name}/disable", tag="accounts", action=Action.USER_WRITE,
          summary="Disable a user (every token stops working)", response=User, target=_user)
async def disable_user(call: Call) -> User:
    return await call.hub.accounts.set_disabled(call.path["name"], True, call.actor)


@endpoint("POST", "/users/{name}/enable", tag="accounts", action=Action.USER_WRITE,
          summary="Enable a disabled user", response=User, target=_user)
async def enable_user(call: Call) -> User:
    return await call.hub.accounts.set_disabled(call.path["name"], False, call.actor)


@endpoint("GET", "/users/{name}/tokens", tag="accounts", action=Action.USER_READ,
          summary="A user's tokens (never their secrets)", query=TokenQuery,
          response=Page[ApiToken], target=_user)
async def user_tokens(call: Call) -> Page[ApiToken]:
    q: TokenQuery = call.query
    tokens = await call.hub.accounts.list_tokens(user=call.path["name"], active=q.active,
                                                 limit=q.limit + 1, offset=q.offset)
    return call.page(tokens, q.limit, q.offset)


@endpoint("POST", "/users/{name}/tokens", tag="accounts", action=Action.USER_WRITE,
          status=201, summary="Create a token for a user (shown once)", body=NewToken,
          response=IssuedToken, target=_user)
async def create_user_token(call: Call) -> IssuedToken:
    body: NewToken = call.body
    return await call.hub.accounts.create_token(call.path["name"], call.actor,
                                                label=body.label, days=body.days)


async def _token(call: Call) -> Target:
    token = await call.hub.accounts.get_token(call.path["id"])
    return Target.of([(await call.hub.accounts.get_user(token.user)).area_code])


@endpoint("DELETE", "/tokens/{id}", tag="accounts", action=Action.USER_WRITE, status=204,
          summary="Revoke a user's token", target=_token)
async def revoke_token(call: Call) -> None:
    await call.hub.accounts.revoke_token(call.path["id"], call.actor)
