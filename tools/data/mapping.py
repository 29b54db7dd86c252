"""The mapping file: how a user's own files and columns become the contract's tables.

``lastmile ingest csv --mapping courier.yaml`` reads files in the user's shape and loads them
through the usual validated, atomic load (:mod:`tools.data.mapping_load`). The file says, per
contract table::

    timezone: Europe/Paris           # zone of zone-less times (default: --assume-timezone)
    promise_date: end_of_day         # a date-only promised_end means 23:59:59.999999 local
    csv: {delimiter: ";", decimal: ",", encoding: cp1252}    # defaults for every CSV file
    tables:
      deliveries:
        files: [exports/deliveries_*.csv]       # CSV or Parquet, relative to this file
        columns: {delivery_id: Order Ref, store_id: Depot, order_ts: Created (local)}
        constants: {carrier: own_fleet}          # one value for every row
        values:                                  # the file's words -> the contract's
          status: {DELIVERED: delivered, OUT_FOR_DELIVERY: in_transit}
        timestamp_format: "%m/%d/%Y %H:%M"       # DuckDB strptime patterns, one or a list
        formats: {promised_end: "%Y-%m-%d"}      # per column, over timestamp_format
        timezone: America/New_York               # over the top-level one
        csv: {delimiter: ","}                    # over the top-level one

Contract columns that are not mapped are taken from a file column of the same name when there
is one. Every scalar is read as text (YAML's ``NO`` stays the word ``NO``). The file is checked
with pydantic and against the contract before any data is read; each error names the mapping
file, the line and what would be right.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from tools.data.dialect import CsvOptions
from tools.data.schema import CONTRACT_TABLES, TableSchema
from tools.data.timeformats import format_problem
from tools.data.yaml_lines import Loc, YamlDocument, YamlSyntaxError, read_yaml
from tools.data.zones import PromiseDate, known_zones, zone_suggestions


def _none_if_empty(value: object) -> object:
    return None if value == "" else value


def _as_list(value: object) -> object:
    if value in (None, ""):
        return []
    return [value] if isinstance(value, str) else value


class TableMapping(BaseModel):
    """How one contract table is read from the user's files (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    files: list[str] = Field(min_length=1)
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    timestamp_format: list[str] = Field(default_factory=list)
    formats: dict[str, list[str]] = Field(default_factory=dict)
    timezone: str | None = None
    promise_date: PromiseDate | None = None
    csv: CsvOptions = CsvOptions()

    @model_validator(mode="before")
    @classmethod
    def _file_means_files(cls, data: object) -> object:
        if isinstance(data, dict) and "file" in data and "files" not in data:
            data = {("files" if k == "file" else k): v for k, v in data.items()}
        return data

    _files = field_validator("files", "timestamp_format", mode="before")(_as_list)
    _optional = field_validator("timezone", "promise_date", mode="before")(_none_if_empty)

    @field_validator("formats", mode="before")
    @classmethod
    def _format_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: _as_list(v) for k, v in value.items()}
        return value


class MappingFile(BaseModel):
    """The whole mapping file."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    promise_date: PromiseDate = "start_of_day"
    csv: CsvOptions = CsvOptions()
    tables: dict[str, TableMapping] = Field(min_length=1)

    _optional = field_validator("timezone", "promise_date", mode="before")(_none_if_empty)


class MappingIssue(BaseModel):
    """One thing wrong in a mapping file, at a line."""

    line: int
    where: str
    message: str


class MappingError(ValueError):
    """Raised when a mapping file is wrong or does not fit the files it names.

    Nothing has been written when it is raised.
    """

    def __init__(self, path: Path, issues: list[MappingIssue]):
        self.path = path
        self.issues = sorted(issues, key=lambda i: i.line)
        n = len(self.issues)
        lines = [f"mapping {path} has {n} problem{'s' if n != 1 else ''}; nothing was stored:"]
        lines += [
            f"- {path.name} line {i.line}{', ' + i.where if i.where else ''}: {i.message}"
            for i in self.issues
        ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Mapping:
    """A checked mapping file with the line of every key it holds."""

    path: Path
    spec: MappingFile
    doc: YamlDocument

    def line(self, loc: Loc) -> int:
        """Return the line of the deepest part of ``loc`` present in the file (1: the top)."""
        parts = list(loc)
        for i, part in enumerate(parts):  # `file:` is accepted for `files:`
            if part == "files" and (*parts[:i], "files") not in self.doc.lines:
                parts[i] = "file"
        return self.doc.line(tuple(parts))

    def issue(self, loc: Loc, message: str) -> MappingIssue:
        """Make an issue at ``loc``, a path of keys such as ``("tables", "stores", "files")``."""
        # A list index pydantic adds to a value written as a scalar is not worth showing.
        shown = [
            p for i, p in enumerate(loc) if isinstance(p, str) or loc[: i + 1] in self.doc.lines
        ]
        return MappingIssue(line=self.line(loc), where=".".join(map(str, shown)), message=message)

    def table(self, name: str) -> TableMapping:
        """Return the mapping of contract table ``name``."""
        return self.spec.tables[name]

    def zone(self, table: str) -> str | None:
        """Zone of the table's zone-less times (its own, else the mapping's; None: not said)."""
        return self.table(table).timezone or self.spec.timezone

    def promise_date(self, table: str) -> PromiseDate:
        """Return what a date-only promise means for this table."""
        return self.table(table).promise_date or self.spec.promise_date

    def csv(self, table: str, fallback: CsvOptions) -> CsvOptions:
        """CSV options of the table's files: its own, the mapping's, then ``fallback``."""
        return self.table(table).csv.over(self.spec.csv).over(fallback)


def _suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=2, cutoff=0.5)
    close = close or [c for c in choices if c.lower() == name.lower()]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


_MISSING_HINTS = {
    "files": "the CSV or Parquet file(s) of this table, relative to the mapping file",
    "tables": f"one entry per contract table to load ({', '.join(CONTRACT_TABLES)})",
}


def _pydantic_issue(mapping: Mapping, error: ErrorDetails) -> MappingIssue:
    # Drop the tags pydantic adds for union members and validators ("list[str]", ...).
    loc = tuple(p for p in error["loc"] if isinstance(p, int) or "[" not in p)
    kind, msg = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        model: type[BaseModel] = MappingFile if len(loc) == 1 else TableMapping
        if len(loc) >= 2 and loc[-2] == "csv":
            model = CsvOptions
        allowed = list(model.model_fields)
        key = str(loc[-1])
        msg = f"unknown key {key!r}{_suggest(key, allowed)} (keys here: {', '.join(allowed)})"
    elif kind == "missing":
        msg = f"{loc[-1]!r} is required: {_MISSING_HINTS.get(str(loc[-1]), 'add it')}"
    return mapping.issue(loc, msg)


def _zone_issue(mapping: Mapping, loc: Loc, zone: str | None) -> list[MappingIssue]:
    if zone is None or zone in known_zones():
        return []
    close = zone_suggestions(zone)
    hint = f"; did you mean {' or '.join(repr(z) for z in close)}?" if close else ""
    return [
        mapping.issue(
            loc, f"unknown time zone {zone!r}{hint} (write an IANA name such as Europe/Paris)"
        )
    ]


def _column_issues(
    mapping: Mapping, loc: Loc, schema: TableSchema, tm: TableMapping
) -> list[MappingIssue]:
    """Contract columns named in columns, constants, values and formats must exist and fit."""
    names = schema.column_names
    issues: list[MappingIssue] = []

    def unknown(section: str, col: str) -> bool:
        if col in names:
            return False
        issues.append(
            mapping.issue(
                (*loc, section, col),
                f"{col!r} is not a column of {schema.name}{_suggest(col, names)} "
                f"(its columns: {', '.join(names)})",
            )
        )
        return True

    for col, source in tm.columns.items():
        if not unknown("columns", col) and not source.strip():
            issues.append(mapping.issue((*loc, "columns", col), "names no source column"))
    for col, value in tm.constants.items():
        if unknown("constants", col):
            continue
        allowed = schema.column(col).allowed
        if col in tm.columns:
            issues.append(
                mapping.issue((*loc, "constants", col), f"{col!r} is also under columns: keep one")
            )
        elif allowed and value not in allowed:
            issues.append(
                mapping.issue(
                    (*loc, "constants", col),
                    f"{value!r} is not a {schema.name}.{col} value{_suggest(value, allowed)} "
                    f"(use one of {', '.join(allowed)})",
                )
            )
    for col, vocab in tm.values.items():
        if not unknown("values", col):
            issues += _vocabulary_issues(mapping, (*loc, "values", col), schema, col, vocab)
    return issues


def _vocabulary_issues(
    mapping: Mapping, loc: Loc, schema: TableSchema, col: str, vocab: dict[str, str]
) -> list[MappingIssue]:
    """Check that the column has a vocabulary and that every word maps into it."""
    allowed = schema.column(col).allowed
    if not allowed:
        fixed = [c.name for c in schema.columns if c.allowed]
        return [
            mapping.issue(
                loc,
                f"{schema.name}.{col} has no fixed vocabulary to map to "
                f"(values can map: {', '.join(fixed) or 'nothing in this table'})",
            )
        ]
    return [
        mapping.issue(
            (*loc, word),
            f"{target!r} is not a {schema.name}.{col} value{_suggest(target, allowed)} "
            f"(use one of {', '.join(allowed)})",
        )
        for word, target in vocab.items()
        if target not in allowed
    ]


def _format_issues(
    mapping: Mapping, loc: Loc, schema: TableSchema, tm: TableMapping
) -> list[MappingIssue]:
    timed = [c.name for c in schema.columns if c.dtype in ("timestamp", "date")]
    issues: list[MappingIssue] = []
    if tm.timestamp_format and not any(c.dtype == "timestamp" for c in schema.columns):
        issues.append(
            mapping.issue(
                (*loc, "timestamp_format"),
                f"{schema.name} has no timestamp columns (use formats for its date columns)",
            )
        )
    checks: list[tuple[Loc, str]] = [
        ((*loc, "timestamp_format", i), p) for i, p in enumerate(tm.timestamp_format)
    ]
    for col, patterns in tm.formats.items():
        if col not in timed:
            issues.append(
                mapping.issue(
                    (*loc, "formats", col),
                    f"{col!r} is not a date or timestamp column of {schema.name}"
                    f"{_suggest(col, timed)} (those are: {', '.join(timed) or 'none'})",
                )
            )
        checks += [((*loc, "formats", col, i), p) for i, p in enumerate(patterns)]
    for where, pattern in checks:
        problem = format_problem(pattern)
        if problem:
            issues.append(mapping.issue(where, problem))
    return issues


def _contract_issues(mapping: Mapping) -> list[MappingIssue]:
    spec = mapping.spec
    issues = _zone_issue(mapping, ("timezone",), spec.timezone)
    for table, tm in spec.tables.items():
        loc: Loc = ("tables", table)
        if table not in CONTRACT_TABLES:
            issues.append(
                mapping.issue(
                    loc,
                    f"{table!r} is not a contract table{_suggest(table, list(CONTRACT_TABLES))} "
                    f"(the tables: {', '.join(CONTRACT_TABLES)})",
                )
            )
            continue
        schema = CONTRACT_TABLES[table]
        issues += _column_issues(mapping, loc, schema, tm)
        issues += _format_issues(mapping, loc, schema, tm)
        issues += _zone_issue(mapping, (*loc, "timezone"), tm.timezone)
        if tm.promise_date is not None and table != "deliveries":
            issues.append(
                mapping.issue(
                    (*loc, "promise_date"), "only deliveries have promises: move it there"
                )
            )
    return issues


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file against the contract.

    Args:
        path: the YAML file.

    Returns:
        The checked mapping, with the line of every key.

    Raises:
        ValueError: the file does not exist or is not text.
        MappingError: listing every problem with its line.
    """
    path = Path(path)
    try:
        doc = read_yaml(path)
    except FileNotFoundError:
        raise ValueError(f"mapping file {path} does not exist") from None
    except YamlSyntaxError as exc:
        issue = MappingIssue(line=exc.line, where="", message=f"not valid YAML: {exc.problem}")
        raise MappingError(path, [issue]) from None
    repeats = [
        MappingIssue(
            line=line,
            where=".".join(map(str, loc)),
            message=f"{loc[-1]!r} is written twice (first on line {first}); keep one",
        )
        for loc, line, first in doc.repeated
    ]
    try:
        spec = MappingFile.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        draft = Mapping(path, MappingFile.model_construct(tables={}), doc)
        issues = [_pydantic_issue(draft, e) for e in exc.errors()]
        raise MappingError(path, repeats + issues) from None
    mapping = Mapping(path, spec, doc)
    issues = repeats + _contract_issues(mapping)
    if issues:
        raise MappingError(path, issues)
    return mapping
