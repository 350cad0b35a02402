"""``insight profile list|create|use|delete``: named storages kept under the insight home."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_insight.cli.options import UsageError, positive_count
from pytest_insight.cli.output import Console, render_table
from pytest_insight.core import profiles
from pytest_insight.core.storage import open_storage

__all__ = ["add_parsers", "run_create", "run_delete", "run_list", "run_use"]

_EXAMPLES = """\
examples:
  insight profile create team s3://bucket/team --endpoint-url http://127.0.0.1:8333
  insight profile use team             make it the default storage
  insight profile list
  insight sessions --profile team      use it for one command
  insight profile use --unset          back to the default local store
  insight profile delete team
"""


def add_parsers(commands: argparse._SubParsersAction[Any], parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``profile`` sub-command and its actions to ``commands``."""
    profile = commands.add_parser(
        "profile",
        parents=parents,
        help="manage named storages (profiles)",
        description="Profiles name a storage URI and its options; the active profile is the "
        "default storage of every command, the plugin and the library.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = profile.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=parents, help="list the profiles; '*' marks the active one")
    listing.set_defaults(handler=run_list)

    create = actions.add_parser("create", parents=parents, help="define a profile")
    create.add_argument("name", metavar="NAME")
    create.add_argument("uri", metavar="URI", help="a path, file://..., s3://bucket/prefix or memory://")
    create.add_argument("--endpoint-url", metavar="URL", help="S3-compatible server (s3:// only)")
    create.add_argument("--region", metavar="REGION", help="the bucket's region (s3:// only)")
    create.add_argument(
        "--concurrency", metavar="N", type=positive_count, help="parallel transfers (s3:// only)"
    )
    create.add_argument("--replace", action="store_true", help="overwrite a profile of the same name")
    create.add_argument("--use", action="store_true", help="also make it the active profile")
    create.set_defaults(handler=run_create)

    use = actions.add_parser("use", parents=parents, help="make a profile the active one")
    which = use.add_mutually_exclusive_group(required=True)
    which.add_argument("name", metavar="NAME", nargs="?")
    which.add_argument("--unset", action="store_true", help="no active profile: use the default store")
    use.set_defaults(handler=run_use)

    delete = actions.add_parser("delete", parents=parents, help="remove a profile")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=run_delete)


def run_list(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight profile list``.

    Raises:
        ConfigurationError: the profiles file cannot be read.
    """
    defined = profiles.list_profiles()
    active = profiles.active_profile()

    def table() -> str:
        if not defined:
            return "No profiles. Create one with 'insight profile create NAME URI'."
        rows = [
            [
                "*" if name == active else "",
                name,
                profile["storage"],
                " ".join(f"{key}={value}" for key, value in sorted(profile["options"].items())),
            ]
            for name, profile in defined.items()
        ]
        return render_table(["", "NAME", "STORAGE", "OPTIONS"], rows)

    console.result({"active": active, "profiles": {name: dict(p) for name, p in defined.items()}}, table)
    return 0


def run_create(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight profile create``.

    Raises:
        ConfigurationError: the name is taken or invalid, or the URI or options are not valid.
    """
    options: dict[str, Any] = {
        key: value
        for key, value in (
            ("endpoint_url", args.endpoint_url),
            ("region", args.region),
            ("concurrency", args.concurrency),
        )
        if value is not None
    }
    # Opening the storage validates the URI and the options without touching the store.
    open_storage(args.uri, **options)
    profile = profiles.create_profile(args.name, args.uri, options, replace=args.replace)
    if args.use:
        profiles.use_profile(args.name)
    active = " (active)" if args.use else ""
    console.result(
        {"name": args.name, "active": args.use, **profile},
        f"Created profile {args.name!r}{active}: {args.uri}",
    )
    return 0


def run_use(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight profile use``.

    Raises:
        UnknownProfileError: no profile has that name.
    """
    if args.unset:
        profiles.use_profile(None)
        console.result({"active": None}, "No active profile: commands use the default store")
        return 0
    if not args.name:
        raise UsageError("profile use needs a NAME or --unset")
    profiles.use_profile(args.name)
    console.result({"active": args.name}, f"Active profile: {args.name}")
    return 0


def run_delete(args: argparse.Namespace, console: Console) -> int:
    """Run ``insight profile delete``.

    Raises:
        UnknownProfileError: no profile has that name.
    """
    profiles.delete_profile(args.name)
    console.result({"deleted": args.name}, f"Deleted profile {args.name!r}")
    return 0
