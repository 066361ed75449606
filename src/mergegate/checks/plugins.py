"""A team's own check types: from installed packages and from the project.

Two ways in, both registering with :func:`~mergegate.checks.registry.check`:

- an installed package declares an entry point in the group
  ``mergegate.checks`` (its module registers checks when loaded);
- ``checks:`` in mergegate.yaml lists modules importable from the project
  folder (e.g. ``checks: [team_checks]`` for ``team_checks.py`` next to it).

Both load before suites are read, so suites can use the new types and
validation accepts them (see :func:`mergegate.suites.models.refresh_check_types`).
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import ConfigError, InputError

if TYPE_CHECKING:
    from ..config import LoadedConfig
    from .static import DeclaredCheck

__all__ = ["ENTRY_POINT_GROUP", "load_user_checks", "read_user_checks"]

ENTRY_POINT_GROUP = "mergegate.checks"
_entry_points_loaded = False


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin is the user's to fix: one line naming it, not a traceback
            raise InputError(f"check plugin {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP!r}) failed to load: "
                             f"{type(exc).__name__}: {exc}") from None
    _entry_points_loaded = True


def load_user_checks(loaded: LoadedConfig) -> None:
    """Load the check types of installed plugins and of the config's ``checks:`` modules (each once per process)."""
    _load_entry_points()
    if not loaded.config.checks:
        return
    root = str(loaded.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    for i, name in enumerate(loaded.config.checks):
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or the module's own error while registering
            raise ConfigError(f"checks[{i}]: cannot import {name!r}: {type(exc).__name__}: {exc}", loaded.path,
                              loaded.lines.get(("checks", i)) or loaded.lines.get(("checks",))) from None


def read_user_checks(loaded: LoadedConfig) -> list[DeclaredCheck]:
    """Validation's :func:`load_user_checks`: ``checks:`` modules in the project are read, not imported.

    Installed plugins and ``checks:`` modules found outside the project are installed code and load as at run time.
    """
    from .static import declared_checks, module_file

    _load_entry_points()
    declared: list[DeclaredCheck] = []
    for i, name in enumerate(loaded.config.checks):
        where = loaded.lines.get(("checks", i)) or loaded.lines.get(("checks",))
        path = module_file(name, [loaded.root])
        if path is None:
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise ConfigError(f"checks[{i}]: cannot import {name!r}: {type(exc).__name__}: {exc}", loaded.path, where) from None
            continue
        try:
            declared += declared_checks(path)
        except ValueError as exc:
            raise ConfigError(f"checks[{i}]: {name!r} does not parse: {exc}", loaded.path, where) from None
    return declared
