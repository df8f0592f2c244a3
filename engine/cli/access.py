"""API keys for scripts that use the HTTP API while the dashboard is shared."""

from __future__ import annotations

from engine.cli.common import EXIT_OK, emit, open_library, print_json


def register(commands, common) -> None:
    keys = commands.add_parser("api-key", parents=[common], help="create, list or revoke API keys",
                               description="API keys let scripts use the HTTP API while the dashboard is "
                                           "shared (a login or a non-local address). A key is shown once.")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="make a key (shown once)")
    create.add_argument("name", help="what the key is for, e.g. 'daw-script'")
    create.set_defaults(run=cmd_create)
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key at once")
    revoke.add_argument("name")
    revoke.set_defaults(run=cmd_revoke)
    listing = actions.add_parser("list", parents=[common], help="the keys' names (never the keys)")
    listing.set_defaults(run=cmd_list)


def cmd_create(args) -> int:
    with open_library(args) as library:
        key = library.create_api_key(args.name)
    emit(args, {"name": args.name, "key": key},
         f"API key '{args.name}': {key}\nIt is shown only now. Send it as 'Authorization: Bearer {key}'.")
    return EXIT_OK


def cmd_revoke(args) -> int:
    with open_library(args) as library:
        library.revoke_api_key(args.name)
    emit(args, {"revoked": args.name}, f"Revoked the API key '{args.name}'.")
    return EXIT_OK


def cmd_list(args) -> int:
    with open_library(args) as library:
        keys = library.api_keys()
    if args.json:
        print_json(keys)
    else:
        print("\n".join(f"{k['name']}  (created {k['created_at']:%Y-%m-%d %H:%M})" for k in keys) or "No API keys.")
    return EXIT_OK
