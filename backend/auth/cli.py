"""``prunelab users add|list|revoke|reset-token``: manage users and API tokens on the configured
database directly (like ``prunelab db upgrade``; no server needed)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from backend.auth import audit
from backend.auth.roles import Role
from backend.auth.users import add_user, list_users, reset_token, revoke_user, signin_link
from backend.db import make_engine, make_session_factory, session_scope
from backend.service.errors import DomainError
from backend.settings import get_settings

EXIT_USAGE = 2


def users_command(args: argparse.Namespace) -> int:
    """Run one ``prunelab users`` action; tokens are printed once, to stdout."""
    engine = make_engine(get_settings())
    try:
        with session_scope(make_session_factory(engine)) as session:
            return _run(args, session)
    except DomainError as exc:
        print(f"prunelab: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()


def _run(args: argparse.Namespace, session: Any) -> int:
    action = args.users_command
    if action == "list":
        print(f"{'NAME':<24} {'ROLE':<8} {'ACTIVE':<6} {'TOKENS':>6}  LAST USED")
        for user in list_users(session):
            used = user.last_used_at.isoformat(timespec="seconds") if user.last_used_at else "never"
            print(
                f"{user.name:<24} {user.role:<8} {'yes' if user.active else 'no':<6} {user.tokens:>6}  {used}"
            )
        return 0
    if action == "add":
        token = add_user(session, args.name, Role(args.role))
        audit.record(session, "cli", "user.add", f"user {args.name}", "cli", role=args.role)
        print(f"prunelab: added {args.name} ({args.role}). Their API token (shown once):", file=sys.stderr)
    elif action == "revoke":
        revoke_user(session, args.name)
        audit.record(session, "cli", "user.revoke", f"user {args.name}", "cli")
        print(f"prunelab: revoked every token and session of {args.name}", file=sys.stderr)
        return 0
    elif action == "reset-token":
        token = reset_token(session, args.name)
        audit.record(session, "cli", "user.reset_token", f"user {args.name}", "cli")
        print(f"prunelab: new API token for {args.name} (old ones revoked; shown once):", file=sys.stderr)
    else:  # signin-link
        token = signin_link(session, args.name)
        audit.record(session, "cli", "user.signin_link", f"user {args.name}", "cli")
        settings = get_settings()
        print(f"http://{settings.host}:{settings.port}/signin?token={token}")
        return 0
    print(token)
    return 0


def add_users_parser(commands: Any) -> None:
    """Add ``users`` and its actions to the ``prunelab`` subparsers."""
    users = commands.add_parser("users", help="manage users and API tokens (on the database directly)")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user and print their API token once")
    add.add_argument("name")
    add.add_argument("--role", choices=[role.value for role in Role], default=Role.member.value)
    actions.add_parser("list", help="list users, their live tokens and last use")
    for name, help_text in (
        ("revoke", "revoke every token and session of a user"),
        ("reset-token", "revoke a user's tokens and print a new one"),
        ("signin-link", "print a one-time browser sign-in link for a user"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("name")
    for parser in [users, *actions.choices.values()]:
        parser.set_defaults(handler=users_command)
