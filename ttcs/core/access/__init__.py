"""Access control: accounts (users, API tokens), the policy that decides what each may do
where, and rate limits. The API asks :mod:`.policy` before every handler runs."""

from .accounts import Accounts
from .policy import (
    MUTATING,
    ROLE_ACTIONS,
    AccessPolicy,
    Action,
    Decision,
    ListScope,
    Principal,
    Target,
    decide,
)
from .ratelimit import RateLimiter

__all__ = ["MUTATING", "ROLE_ACTIONS", "AccessPolicy", "Accounts", "Action", "Decision",
           "ListScope", "Principal", "RateLimiter", "Target", "decide"]
