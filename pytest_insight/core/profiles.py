"""Named storage profiles, kept in one JSON file under the insight home.

The file is ``$PYTEST_INSIGHT_HOME/profiles.json`` (``~/.pytest_insight``
by default)::

    {"active": "team",
     "profiles": {"team": {"storage": "s3://bucket/team",
                           "options": {"endpoint_url": "http://127.0.0.1:8333"}}}}

It is rewritten atomically (temporary file and ``os.replace``), so a reader
never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict

from pytest_insight.errors import ConfigurationError, UnknownProfileError
from pytest_insight.files import write_atomic

__all__ = [
    "Profile",
    "active_profile",
    "create_profile",
    "default_store_path",
    "delete_profile",
    "get_profile",
    "insight_home",
    "list_profiles",
    "resolve_storage_uri",
    "storage_from_environment",
    "use_profile",
]

PROFILE_OPTIONS = frozenset({"endpoint_url", "region", "concurrency"})


class Profile(TypedDict):
    """A named storage: its URI and backend options."""

    storage: str
    options: dict[str, Any]


def insight_home() -> Path:
    """The directory for pytest-insight's own files (``PYTEST_INSIGHT_HOME``)."""
    configured = os.environ.get("PYTEST_INSIGHT_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".pytest_insight"


def default_store_path() -> Path:
    """Where the default local store lives."""
    return insight_home() / "store"


def _profiles_file() -> Path:
    return insight_home() / "profiles.json"


def _read() -> dict[str, Any]:
    path = _profiles_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"active": None, "profiles": {}}
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read profiles: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise ConfigurationError(f"{path}: expected an object with a 'profiles' object")
    data.setdefault("profiles", {})
    data.setdefault("active", None)
    for name, profile in data["profiles"].items():
        if not isinstance(profile, dict) or not isinstance(profile.get("storage"), str):
            raise ConfigurationError(f"{path}: profile {name!r} needs a 'storage' string")
    return data


def _write(data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(_profiles_file(), text.encode("utf-8"))


def list_profiles() -> dict[str, Profile]:
    """Return every defined profile by name.

    Raises:
        ConfigurationError: the profiles file cannot be read or parsed.
    """
    profiles = _read()["profiles"]
    return {
        name: Profile(storage=entry["storage"], options=dict(entry.get("options") or {}))
        for name, entry in sorted(profiles.items())
    }


def active_profile() -> str | None:
    """Return the name of the active profile, if one is set."""
    active = _read()["active"]
    return active if isinstance(active, str) else None


def get_profile(name: str) -> Profile:
    """Return one profile.

    Raises:
        UnknownProfileError: no profile has that name.
    """
    profiles = list_profiles()
    if name not in profiles:
        raise UnknownProfileError(name, list(profiles))
    return profiles[name]


def create_profile(
    name: str, storage: str, options: dict[str, Any] | None = None, *, replace: bool = False
) -> Profile:
    """Define a profile.

    Raises:
        ConfigurationError: the name is empty or taken (unless ``replace``),
            or an option is not one of ``endpoint_url``, ``region``,
            ``concurrency``.
    """
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigurationError(f"invalid profile name {name!r} (letters, digits, '-', '_', '.')")
    unknown = set(options or {}) - PROFILE_OPTIONS
    if unknown:
        raise ConfigurationError(f"unknown profile options: {', '.join(sorted(unknown))}")
    data = _read()
    if name in data["profiles"] and not replace:
        raise ConfigurationError(f"profile {name!r} exists already")
    profile = Profile(storage=storage, options=dict(options or {}))
    data["profiles"][name] = dict(profile)
    _write(data)
    return profile


def delete_profile(name: str) -> None:
    """Remove a profile; the active profile is unset if it was this one.

    Raises:
        UnknownProfileError: no profile has that name.
    """
    data = _read()
    if name not in data["profiles"]:
        raise UnknownProfileError(name, list(data["profiles"]))
    del data["profiles"][name]
    if data["active"] == name:
        data["active"] = None
    _write(data)


def use_profile(name: str | None) -> None:
    """Make ``name`` the active profile (None unsets it).

    Raises:
        UnknownProfileError: no profile has that name.
    """
    data = _read()
    if name is not None and name not in data["profiles"]:
        raise UnknownProfileError(name, list(data["profiles"]))
    data["active"] = name
    _write(data)


def storage_from_environment() -> str | None:
    """The variable that chooses the storage when no profile is named, if one does.

    So that a command can say where its storage came from: a variable pasted
    into a shell once (``PYTEST_INSIGHT_STORAGE=s3://...``) redirects every
    command after it, silently otherwise.
    """
    for variable in ("PYTEST_INSIGHT_PROFILE", "PYTEST_INSIGHT_STORAGE"):
        if os.environ.get(variable):
            return f"{variable}={os.environ[variable]}"
    return None


def resolve_storage_uri(profile: str | None = None) -> tuple[str, dict[str, Any]]:
    """Return the storage URI and options that are in force.

    Order: ``profile``, ``PYTEST_INSIGHT_PROFILE``, ``PYTEST_INSIGHT_STORAGE``,
    the active profile, the default local store.

    Raises:
        UnknownProfileError: a profile named by argument or environment is not defined.
    """
    name = profile or os.environ.get("PYTEST_INSIGHT_PROFILE") or None
    if name is None:
        uri = os.environ.get("PYTEST_INSIGHT_STORAGE")
        if uri:
            return uri, {}
        name = active_profile()
    if name is not None:
        chosen = get_profile(name)
        return chosen["storage"], chosen["options"]
    return str(default_store_path()), {}
