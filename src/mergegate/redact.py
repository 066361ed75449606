"""Keep secrets out of everything mergegate writes or prints.

An endpoint that echoes the API key in an error (a 401 body, a log line) would
otherwise copy it into results.json, the reports, junit.xml, the server logs and
the CI log — and from the artifact into the PR comment. The secrets are the
values of every environment variable the config names (each model's
``api_key_env``) and of the tokens CI hands any step. They are replaced by
``***`` (as GitHub masks them): at the source where errors are made, on the
child's stdout and stderr, and in every file of the output folder once the run
ends.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["MASK", "Redactor", "RedactingStream"]

MASK = "***"
WELL_KNOWN = ("GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
"""Tokens CI commonly puts in a step's environment, redacted whether the config names them or not."""
_MIN_LEN = 6  # a shorter value ("EMPTY", "1") would mask ordinary words; no real key is that short


class Redactor:
    """Replaces each secret value by ``***`` in text, bytes and files."""

    def __init__(self, values: Iterable[str]):
        # longest first: a secret that contains another is masked whole
        self.values = sorted({v for v in values if v and len(v) >= _MIN_LEN and v != "EMPTY"}, key=len, reverse=True)
        self._raw = [v.encode() for v in self.values]

    @classmethod
    def from_config(cls, config: Any) -> Redactor:
        """Return the redactor for ``config``'s named environment variables and the well-known CI tokens."""
        names = {spec.api_key_env for spec in _model_specs(config) if getattr(spec, "api_key_env", None)} | set(WELL_KNOWN)
        return cls(os.environ.get(n, "") for n in sorted(names))

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, s: str) -> str:
        """Return ``s`` with every secret masked."""
        for v in self.values:
            if v in s:
                s = s.replace(v, MASK)
        return s

    def data(self, b: bytes) -> bytes:
        """Return ``b`` with every secret masked."""
        for v in self._raw:
            if v in b:
                b = b.replace(v, MASK.encode())
        return b

    def files(self, folder: Path) -> list[Path]:
        """Mask secrets in place in every file of ``folder`` and its ``logs/``; return the files that held one."""
        changed: list[Path] = []
        if not self:
            return changed
        for path in [*Path(folder).glob("*"), *Path(folder).glob("logs/*")]:
            if not path.is_file() or path.is_symlink():
                continue
            raw = path.read_bytes()
            clean = self.data(raw)
            if clean != raw:
                tmp = path.with_name(f".{path.name}.redacted")
                tmp.write_bytes(clean)
                tmp.replace(path)
                changed.append(path)
        return changed


class RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in what is written to it (a secret split across two writes is not caught)."""

    def __init__(self, stream: Any, redactor: Redactor):
        self._stream = stream
        self._redactor = redactor

    def write(self, s: str) -> int:
        self._stream.write(self._redactor.text(s))
        return len(s)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer...: the wrapped stream's
        return getattr(self._stream, name)


def _model_specs(node: Any) -> Iterator[Any]:
    """Yield every model spec in the config (models, judge, strong judge, benchmark references), wherever it sits."""
    from pydantic import BaseModel

    from .config.models import ModelSpec

    if isinstance(node, ModelSpec):
        yield node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _model_specs(getattr(node, name))
    elif isinstance(node, dict):
        for v in node.values():
            yield from _model_specs(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _model_specs(v)
