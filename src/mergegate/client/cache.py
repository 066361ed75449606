"""The persistent response cache: SQLite, one row per response, keyed by everything that decides it.

SQLite commits are atomic, so a crash mid-run leaves every finished response
stored and no torn row; the file can be carried between CI runs as it is.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Optional

__all__ = ["ResponseCache", "cache_key"]


def cache_key(identity: dict[str, Any], request: dict[str, Any]) -> str:
    """Return the hex sha256 of the model identity and the full request, canonically serialised."""
    blob = json.dumps({"identity": identity, "request": request}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key → JSON response store in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """Return the stored response for ``key``, or None."""
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

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
