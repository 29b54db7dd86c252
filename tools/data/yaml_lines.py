"""Read a YAML file as plain text values together with the line of every key.

Configuration errors are only useful when they point at a line. PyYAML's composed node tree
carries the position of every key; :func:`read_yaml` returns the document (every scalar as a
string, so ``NO``, ``01`` or ``1e3`` stay what was written) and a map from key paths such as
``("tables", "deliveries", "columns", "order_ts")`` to 1-based line numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

Loc = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """The text is not YAML; ``line`` is where the parser stopped (1-based)."""

    def __init__(self, line: int, problem: str):
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: not valid YAML: {problem}")


@dataclass
class YamlDocument:
    """A parsed document, the line of each key path, and keys written twice.

    Attributes:
        data: the document (dicts, lists and strings; None for an empty file).
        lines: key path -> 1-based line; ``()`` is line 1.
        repeated: (path, line, first line) of each key written twice in one mapping (YAML
            keeps the last silently).
    """

    data: object
    lines: dict[Loc, int] = field(default_factory=lambda: {(): 1})
    repeated: list[tuple[Loc, int, int]] = field(default_factory=list)

    def line(self, loc: Loc) -> int:
        """Return the line of the deepest part of ``loc`` written in the file.

        Parts absent from the file (a key pydantic reports as missing, a list index of a value
        written as a scalar) are skipped, so the answer is the nearest enclosing key.
        """
        found: Loc = ()
        for part in loc:
            if (*found, part) in self.lines:
                found = (*found, part)
        return self.lines.get(found, 1)


def _walk(node: yaml.Node, loc: Loc, doc: YamlDocument) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*loc, str(key.value))
            line = key.start_mark.line + 1
            if here in doc.lines:
                doc.repeated.append((here, line, doc.lines[here]))
            doc.lines[here] = line
            _walk(value, here, doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*loc, i)] = item.start_mark.line + 1
            _walk(item, (*loc, i), doc)


def read_yaml(path: Path) -> YamlDocument:
    """Parse a YAML file, keeping every scalar as text and the line of every key.

    Args:
        path: a UTF-8 file (a byte-order mark is allowed).

    Returns:
        The document and its lines.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it cannot be read as UTF-8 text.
        YamlSyntaxError: it is not YAML, with the line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} cannot be read as UTF-8 text: {exc}") from None
    loader = yaml.BaseLoader(text)  # every scalar as text: status codes such as NO stay words
    try:
        node = loader.get_single_node()
        doc = YamlDocument(loader.construct_document(node) if node is not None else None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(mark.line + 1 if mark else 1, str(exc.problem)) from None
    finally:
        loader.dispose()
    if node is not None:
        _walk(node, (), doc)
    return doc
