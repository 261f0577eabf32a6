"""``ledger serve`` and ``ledger token …`` (docs/api.md)."""

from __future__ import annotations

import argparse
import secrets

from cli.common import open_ledger, store_options
from ledger.errors import LedgerError

#: The same as ``ledger.access.ROLES`` (tests/test_cli.py checks), written here so that
#: building the command line imports nothing heavy.
ROLES = ("clerk", "auditor", "admin")


def add_parsers(commands, common: argparse.ArgumentParser) -> None:

    serve = commands.add_parser("serve", parents=[common])
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")

    token = commands.add_parser("token", parents=[common])
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common],
                                help="create a token; it is printed once, only its hash is "
                                     "kept")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", help="who or what uses it (default: the role and a number)")
    create.add_argument("--by", help="who creates it")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("name", help="its name or id")
    revoke.add_argument("--by", help="who revokes it")
    listing = actions.add_parser("list", parents=[common], help="the tokens (never the secret)")
    listing.add_argument("--json", action="store_true")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return port


def _check_listen(host: str, port: int) -> None:
    """Bind once and let go, so that an address in use or a host that is not one of this
    machine's is one line of error (the server's own start-up failure is a log and exit 3,
    the exit code of `invoice show`'s difference)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise LedgerError(f"cannot listen on {host}:{port}: "
                          f"{error.strerror or error}") from None


def run_serve(args: argparse.Namespace) -> int:
    from web.api import serve

    # Fail before listening if the store is missing, with the usual message.
    open_ledger(args).close()
    _check_listen(args.host, args.port)
    serve(*store_options(args), args.host, args.port)
    return 0


def run_token(args: argparse.Namespace) -> int:
    from cli.output import print_json
    from commands.unit_of_work import record
    from ledger.access import Access, access_id
    from web.api import new_token, token_hash

    app = open_ledger(args)
    access = app.aggregate(access_id()) or Access()
    if args.token_command == "list":
        rows = [{"id": token_id, "name": t["name"], "role": t["role"], "revoked": t["revoked"]}
                for token_id, t in access.tokens.items()]
        if args.json:
            print_json(rows)
        else:
            for row in rows:
                state = "revoked" if row["revoked"] else "active"
                print(f"{row['id']}  {row['name']:<24} {row['role']:<8} {state}")
            if not rows:
                print("No token: ledger token create --role clerk|auditor|admin")
        return 0
    if args.token_command == "revoke":
        token_id = access.revoke(args.name)
        record(app, access, via="token revoke", by=args.by)
        print(f"token {token_id} revoked")
        return 0
    token = new_token()
    token_id = secrets.token_hex(4)
    name = args.name or f"{args.role}-{token_id}"
    if not name.strip():
        raise LedgerError("a token needs a name")
    access.create(token_id, name.strip(), args.role, token_hash(token))
    record(app, access, via="token create", by=args.by)
    print(f"token {token_id} ({name}, {args.role}) created; it is shown once, keep it safe:")
    print(token)
    return 0


RUNNERS = {"serve": run_serve, "token": run_token}


def run(args: argparse.Namespace) -> int:
    return RUNNERS[args.command](args)
