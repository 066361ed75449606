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


_PLAIN_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE = "tag:yaml.org,2002:merge"

#: Values a document may expand to through aliases: a few aliases nested ten deep ("billion laughs") would
#: otherwise make every later step (validation, the cache key) walk billions of values.
MAX_VALUES = 1_000_000


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's C parser when present: ~10x faster on large suites)."""


class _Builder:
    """Builds the document from the parser's events, recording the line of every value.

    Not from PyYAML's node tree: for a 10,000-case suite that tree (a node and
    two marks per value) was the run's largest allocation, ~45 MB held at once.
    Scalars are resolved and constructed by the safe loader itself.
    """

    def __init__(self, loader: _Loader, path: Path, error: type[InputError]):
        self.loader, self.path, self.error = loader, path, error
        self.lines: dict[tuple, int] = {}
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.values = 0

    def fail(self, message: str, mark: Any) -> InputError:
        return self.error(message, self.path, mark.line + 1 if mark is not None else None)

    def document(self) -> Any:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # document start
        data, _ = self.value(())
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise self.fail("expected a single document, found another", loader.peek_event().start_mark)
        return data

    def value(self, where: tuple) -> tuple[Any, int]:
        """Return the next value and how many values it stands for (aliases included)."""
        event = self.loader.get_event()
        # A mapping value is located at its key's line (where the user wrote it), set by the caller.
        self.lines.setdefault(where, event.start_mark.line + 1)
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise self.fail(f"unknown alias *{event.anchor}", event.start_mark)
            data, size = self.anchors[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            data, size = self.scalar(event), 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if event.tag not in _PLAIN_TAGS:
                raise self.fail(f"unsupported YAML tag {event.tag!r}: suites hold data only", event.start_mark)
            data, size = self.sequence(where) if isinstance(event, yaml.SequenceStartEvent) else self.mapping(where)
        else:  # the parser guarantees a node here
            raise self.fail(f"unexpected YAML event {type(event).__name__}", event.start_mark)
        self.values += size if isinstance(event, yaml.AliasEvent) else 1  # each parsed value once, each alias as all it repeats
        if self.values > MAX_VALUES:
            raise self.fail(f"the document expands to more than {MAX_VALUES:,} values (aliases of aliases?)", event.start_mark)
        if getattr(event, "anchor", None) and not isinstance(event, yaml.AliasEvent):
            self.anchors[event.anchor] = (data, size)
        return data, size

    def scalar(self, event: yaml.ScalarEvent) -> Any:
        loader = self.loader
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        construct = loader.yaml_constructors.get(tag)
        if construct is None or tag == _MERGE:
            raise self.fail(f"unsupported YAML tag {tag!r}: suites hold data only", event.start_mark)
        return construct(loader, node)

    def sequence(self, where: tuple) -> tuple[list, int]:
        items: list[Any] = []
        size = 1
        while not self.loader.check_event(yaml.SequenceEndEvent):
            item, n = self.value(where + (len(items),))
            items.append(item)
            size += n
        self.loader.get_event()
        return items, size

    def mapping(self, where: tuple) -> tuple[dict, int]:
        out: dict = {}
        merged: list[dict] = []
        size = 1
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event = self.loader.peek_event()
            if not isinstance(key_event, yaml.ScalarEvent):
                raise self.fail("mapping keys must be plain scalars", key_event.start_mark)
            self.loader.get_event()
            tag = key_event.tag or self.loader.resolve(yaml.ScalarNode, key_event.value, key_event.implicit)
            if tag == _MERGE:  # YAML merge keys (<<: *base, or a list of them): explicit keys win, then earlier merges
                value, n = self.value(where)
                merged.extend(value if isinstance(value, list) else [value])
                if not all(isinstance(m, dict) for m in merged):
                    raise self.fail("a merge key (<<) takes a mapping or a list of mappings", key_event.start_mark)
                size += n
                continue
            key = self.scalar(key_event)
            if key in out:
                raise self.fail(f"duplicate key {key!r}", key_event.start_mark)
            self.lines[where + (key,)] = key_event.start_mark.line + 1
            out[key], n = self.value(where + (key,))
            size += n
        self.loader.get_event()
        for m in merged:
            for k, v in m.items():
                out.setdefault(k, v)
        return out, size


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
    builder = _Builder(loader, path, error)
    try:
        data = builder.document()
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
    return LocatedYaml(data=data, path=path, lines=builder.lines)


def line_for(doc: LocatedYaml, loc: tuple) -> int | None:
    """Return the line of the deepest known prefix of ``loc`` (pydantic error locations)."""
    loc = tuple(loc)
    while loc:
        if loc in doc.lines:
            return doc.lines[loc]
        loc = loc[:-1]
    return doc.lines.get(())
