"""``ttcs users ...`` and ``ttcs tokens ...``: accounts of the API, managed on the hub's machine.

Secrets never come from the command line (it lands in shell history and ``ps``): a password
is read from a file, from standard input or from the terminal; a new token is printed once
(or written to a file only its owner can read) and never logged.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from ...schemas.access import Role, UserSpec
from ...schemas.errors import explain
from ..config import Settings
from ..hub import Hub


def read_secret(file: str | None, stdin: bool, prompt: str) -> SecretStr | None:
    """A secret from a file, standard input, or the terminal (asked twice); None if none."""
    from ...cli import CliError

    if file:
        try:
            return SecretStr(Path(file).read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc}") from exc
    if stdin:
        return SecretStr(sys.stdin.readline().rstrip("\n"))
    if prompt and sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        if first != getpass.getpass(f"{prompt} (again): "):
            raise CliError("the two passwords differ")
        return SecretStr(first)
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


async def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import CliError, actor, emit_json, with_hub

    password = read_secret(args.password_file, args.password_stdin,
                           "password" if args.ask_password else "")
    try:
        spec = UserSpec(name=args.name, role=args.role, area_code=args.area,
                        plugins=args.plugin or [], approver=args.approver, password=password)
    except ValidationError as exc:
        raise CliError(explain(exc)) from exc

    async def work(hub: Hub) -> int:
        user = await hub.accounts.add_user(spec, actor())
        emit_json(user) if args.json else print(
            f"user {user.name}: {user.role.value}, area {user.area_code or 'whole hub'}"
            + (f", plugins {','.join(user.plugins)}" if user.plugins else ""))
        return 0

    return await with_hub(settings, work)


async def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import emit_json, emit_table, with_hub

    async def work(hub: Hub) -> int:
        users = await hub.accounts.list_users(area=args.area, role=args.role)
        emit_json(users) if args.json else emit_table(
            [u.model_dump(mode="json") for u in users],
            ["name", "role", "area_code", "plugins", "approver", "disabled", "has_password"])
        return 0

    return await with_hub(settings, work)


async def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import actor, with_hub

    async def work(hub: Hub) -> int:
        user = await hub.accounts.set_disabled(args.name, args.disable, actor())
        print(f"user {user.name} {'disabled' if user.disabled else 'enabled'}")
        return 0

    return await with_hub(settings, work)


async def cmd_users_password(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import CliError, actor, with_hub

    password = read_secret(args.password_file, args.password_stdin, "new password")
    if password is None:
        raise CliError("give the password with --password-file FILE or --password-stdin")

    async def work(hub: Hub) -> int:
        await hub.accounts.set_password(args.name, password, actor())
        print(f"password of {args.name} set")
        return 0

    return await with_hub(settings, work)


async def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import actor, emit_json, with_hub

    async def work(hub: Hub) -> int:
        issued = await hub.accounts.create_token(args.user, actor(), label=args.label,
                                                 days=args.days)
        if args.out:
            write_private(Path(args.out), issued.token)
            print(f"token {issued.info.id} for {issued.info.user} written to {args.out} "
                  f"(expires {issued.info.expires_at:%Y-%m-%d})")
        elif args.json:
            emit_json(issued)
        else:
            print(issued.token)
            print(f"token {issued.info.id} for {issued.info.user}, expires "
                  f"{issued.info.expires_at:%Y-%m-%d}. It is shown only this once.",
                  file=sys.stderr)
        return 0

    return await with_hub(settings, work)


async def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import emit_json, emit_table, with_hub

    async def work(hub: Hub) -> int:
        tokens = await hub.accounts.list_tokens(user=args.user, active=args.active)
        emit_json(tokens) if args.json else emit_table(
            [t.model_dump(mode="json") for t in tokens],
            ["id", "user", "label", "kind", "expires_at", "revoked_at", "last_used_at"])
        return 0

    return await with_hub(settings, work)


async def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from ...cli import actor, with_hub

    async def work(hub: Hub) -> int:
        token = await hub.accounts.revoke_token(args.id, actor())
        print(f"token {token.id} of {token.user} revoked")
        return 0

    return await with_hub(settings, work)


def register(sub: Any) -> None:
    """Add the ``users`` and ``tokens`` command groups to the ``ttcs`` parser."""
    from ...cli import add, group

    users = group(sub, "users", "API users: role and area")
    p = add(users, "add", cmd_users_add, "add a user")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--area", help="scope: this area and below (default: the whole hub)")
    p.add_argument("--plugin", action="append", help="vendor accounts: a plugin whose "
                   "devices they see (repeatable)")
    p.add_argument("--approver", help="approver accounts: the approver record they sign as")
    p.add_argument("--password-file", metavar="FILE", help="set a login password read from "
                   "FILE")
    p.add_argument("--password-stdin", action="store_true",
                   help="set a login password read from standard input")
    p.add_argument("--ask-password", action="store_true",
                   help="ask for a login password on the terminal")
    p = add(users, "list", cmd_users_list, "list users")
    p.add_argument("--area", help="users scoped to this area or below")
    p.add_argument("--role", choices=[r.value for r in Role])
    for name, disable in (("disable", True), ("enable", False)):
        p = add(users, name, cmd_users_disable, f"{name} a user (disabling stops every token)",
                json_flag=False)
        p.add_argument("name")
        p.set_defaults(disable=disable)
    p = add(users, "password", cmd_users_password, "set a user's login password",
            json_flag=False)
    p.add_argument("name")
    p.add_argument("--password-file", metavar="FILE")
    p.add_argument("--password-stdin", action="store_true")

    tokens = group(sub, "tokens", "API tokens")
    p = add(tokens, "create", cmd_tokens_create, "create a token (printed once)")
    p.add_argument("user")
    p.add_argument("--label", default="api")
    p.add_argument("--days", type=float, help="validity (default: api.token_days, 90)")
    p.add_argument("--out", metavar="FILE", help="write the token to FILE (mode 0600) "
                   "instead of printing it")
    p = add(tokens, "list", cmd_tokens_list, "list tokens (never their secrets)")
    p.add_argument("--user")
    p.add_argument("--active", action="store_true", help="only tokens still valid")
    p = add(tokens, "revoke", cmd_tokens_revoke, "revoke a token", json_flag=False)
    p.add_argument("id")
