"""The persistent response cache: SQLite, one row per response, keyed by everything that decides it.

SQLite commits are atomic, so a crash mid-run leaves every finished response
stored and no torn row; the file can be carried between CI runs as it is.

A cache is an optimisation, never a source of answers: a row that is not a
valid response (edited, written by a broken version, corrupted) is a miss,
dropped and counted (``rejected``), and the request goes to the model again. A
file that is not a readable SQLite database is a one-line error naming it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError

__all__ = ["ResponseCache", "cache_key", "committed"]


def cache_key(identity: dict[str, Any], request: dict[str, Any]) -> str:
    """Return the hex sha256 of the model identity and the full request, canonically serialised."""
    blob = json.dumps({"identity": identity, "request": request}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key → JSON response store in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rejected = 0
        """Rows found that were not valid responses (dropped; their requests were sent again)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
            self._db.execute("SELECT key, value FROM responses LIMIT 1").fetchall()  # a table of another shape fails here
        except (sqlite3.Error, OSError) as exc:
            raise InputError(f"the response cache cannot be used ({exc}); delete the file (its responses will be "
                             "fetched again) or set cache.path to another file", self.path) from None

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """Return the stored response for ``key``, or None (also when the row is not a JSON object: see :meth:`reject`)."""
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if not row:
            return None
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            self.reject(key, "not a JSON object")
            return None
        return value

    def reject(self, key: str, why: str) -> None:
        """Drop the row under ``key``, which is not a valid response (``why``), and say so once per cache."""
        self._db.execute("DELETE FROM responses WHERE key = ?", (key,))
        self.rejected += 1
        if self.rejected == 1:
            print(f"mergegate: warning: {self.path}: a cached row was not a valid response ({why}); "
                  "such rows are dropped and their requests sent again", file=sys.stderr)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key`` (committed at once)."""
        self._db.execute("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                         (key, json.dumps(value, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()


def committed(path: str | Path) -> bool:
    """Return True when ``path`` is tracked by the git repository it sits in (False outside one, or without git).

    A cache file committed to the repository came with the pull request: its rows could be answers forged
    under the right keys, so a run refuses it (the CLI says so in one line).
    """
    path = Path(path)
    try:
        done = subprocess.run(["git", "-C", str(path.parent), "ls-files", "--error-unmatch", "--", path.name],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
