"""``forgeml keys create|list|revoke``: the access keys ``forgeml server`` accepts."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from forgeml.cli.render import console, short_time
from forgeml.config import Config
from forgeml.server.auth import CREDENTIALS_PROFILE, KeyStore


def add_keys_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys", help="access keys the server accepts: create, list, revoke",
        description="Manage the access key pairs that forgeml server accepts in SigV4-signed requests.")
    keys_sub = parser.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("create", help="make a new key pair and print its secret (only this once)")
    keys_sub.add_parser("list", help="every key's id, status and creation time (never the secrets)")
    revoke = keys_sub.add_parser("revoke", help="mark a key Inactive: requests signed with it get 403")
    revoke.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    parser.set_defaults(func=cmd_keys)


def _keys_table(keys: list[dict[str, Any]]) -> Table:
    table = Table(title="Access keys", show_edge=False)
    for column in ("AccessKeyId", "Status", "Created", "Default"):
        table.add_column(column, no_wrap=column == "AccessKeyId")
    for key in keys:
        status = key["Status"]
        table.add_row(key["AccessKeyId"], f"[{'green' if status == 'Active' else 'red'}]{status}[/]",
                      short_time(key["CreateDate"]), f"profile {CREDENTIALS_PROFILE}" if key["Default"] else "")
    return table


def _print_created(store: KeyStore, access_key_id: str, secret: str) -> None:
    """Plain print, not rich: the secret and the INI snippet must come out exactly as they are."""
    print(f"AccessKeyId:     {access_key_id}")
    print(f"SecretAccessKey: {secret}")
    print("The secret is shown only now. Put the pair in a shared-credentials file as its own profile:")
    print(f"  [my-profile]\n  aws_access_key_id = {access_key_id}\n  aws_secret_access_key = {secret}")
    print(f"The server's default pair is in {store.credentials_path} (profile {CREDENTIALS_PROFILE}): "
          f"AWS_SHARED_CREDENTIALS_FILE={store.credentials_path} AWS_PROFILE={CREDENTIALS_PROFILE}")


def cmd_keys(args: argparse.Namespace) -> int:
    store = KeyStore(Config.from_env())
    if args.keys_command == "create":
        access_key_id, secret = store.create()
        _print_created(store, access_key_id, secret)
    elif args.keys_command == "list":
        keys = store.list()
        if not keys:
            console.print("No access keys yet: `forgeml server` makes one on its first start, "
                          "or run `forgeml keys create`.")
        else:
            console.print(_keys_table(keys))
    elif args.keys_command == "revoke":
        store.revoke(args.access_key_id)
        console.print(f"Revoked {args.access_key_id} (Inactive): requests signed with it now get 403.")
    return 0
