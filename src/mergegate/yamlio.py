"""YAML reading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and silently keeps the last of two
duplicate keys. Users deserve ``file:line`` in every error, so we compose the
node tree ourselves and record the line of each value under its path
(a tuple of mapping keys and list indices, the same shape as pydantic's
``ValidationError`` ``loc``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

__all__ = ["LocatedYaml", "load_yaml", "line_for"]


@dataclass
class LocatedYaml:
    """The parsed document plus a map from value path to 1-based line."""

    data: Any
    path: Path
    lines: dict[tuple, int] = field(default_factory=dict)


_PLAIN_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's C parser when present: ~10x faster on large suites)."""


def _build(node: yaml.Node, loader: _Loader, where: tuple, lines: dict, path: Path, error: type[InputError]) -> Any:
    # A mapping value is located at its key's line (where the user wrote it), set by the caller.
    lines.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTION_TAGS:
        raise error(f"unsupported YAML tag {node.tag!r}: suites hold data only", path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise error("mapping keys must be plain scalars", path, key_node.start_mark.line + 1)
            key = loader.construct_object(key_node)
            if key in out:
                raise error(f"duplicate key {key!r}", path, key_node.start_mark.line + 1)
            lines[where + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, loader, where + (key,), lines, path, error)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, loader, where + (i,), lines, path, error) for i, v in enumerate(node.value)]
    try:
        return loader.construct_object(node)
    except yaml.constructor.ConstructorError:
        raise error(f"unsupported YAML tag {node.tag!r}: suites hold data only", path, node.start_mark.line + 1) from None


def load_yaml(path: str | Path, error: type[InputError] = InputError) -> LocatedYaml:
    """Return the document at ``path`` with line numbers; raise ``error`` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}", path) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[tuple, int] = {}
        data = None if node is None else _build(node, loader, (), lines, path, error)
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct began (an unclosed quote, say):
        # that is the line to fix, while the problem mark may point at the end of the file.
        mark = exc.context_mark or exc.problem_mark
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.problem_mark:
            problem = f"{exc.context}: {problem} (line {exc.problem_mark.line + 1})"
        raise error(f"invalid YAML: {problem}", path, mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return LocatedYaml(data=data, path=path, lines=lines)


def line_for(doc: LocatedYaml, loc: tuple) -> int | None:
    """Return the line of the deepest known prefix of ``loc`` (pydantic error locations)."""
    loc = tuple(loc)
    while loc:
        if loc in doc.lines:
            return doc.lines[loc]
        loc = loc[:-1]
    return doc.lines.get(())
