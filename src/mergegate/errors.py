"""Every error mergegate raises on purpose derives from one base class.

Hierarchy::

    MergegateError                 base; ``exit_code`` says how the CLI exits
    ├── InputError                 the user's files are wrong (exit 2, one line, no traceback)
    │   ├── ConfigError            mergegate.yaml
    │   └── SuiteError             a suite YAML file
    ├── IncompleteError            the evaluation could not be completed (exit 2, never GO)
    │   ├── ServerError            a model server failed to start or died (carries its log tail)
    │   ├── GenerationError        too many requests failed
    │   └── SandboxUnavailable     (mergegate.sandbox) the sandbox backend asked for does not work here
    └── GitHubError                the GitHub REST API refused or kept failing (exit 3: the PR
                                   comment was not posted; the verdict is not changed by this)

``InputError`` carries ``path`` and ``line`` so the message always names the file
and line as ``path:line: message``, the form editors and CI annotations link to.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "MergegateError",
    "InputError",
    "ConfigError",
    "SuiteError",
    "IncompleteError",
    "ServerError",
    "GenerationError",
    "GitHubError",
]


class MergegateError(Exception):
    """Base class. ``exit_code`` is what the CLI returns when this error ends a run."""

    exit_code = 2


class InputError(MergegateError):
    """A user-supplied file is invalid. ``str()`` reads ``path:line: message``."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class ConfigError(InputError):
    """mergegate.yaml is invalid."""


class SuiteError(InputError):
    """A suite file is invalid."""


class IncompleteError(MergegateError):
    """The evaluation did not complete; the verdict is INCOMPLETE."""


class ServerError(IncompleteError):
    """A model server failed to start or exited; ``log_tail`` holds its last log lines."""

    def __init__(self, message: str, log_tail: str = ""):
        self.log_tail = log_tail
        full = message if not log_tail else f"{message}\n--- server log (tail) ---\n{log_tail}"
        super().__init__(full)


class GenerationError(IncompleteError):
    """More requests failed than the configured tolerance."""


class GitHubError(MergegateError):
    """A GitHub REST API call failed after its retries; ``status`` is the last HTTP status (0: no response)."""

    exit_code = 3

    def __init__(self, message: str, status: int = 0):
        self.status = status
        super().__init__(message)
