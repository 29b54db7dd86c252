"""Read CSV files the way spreadsheets save them, and Parquet files, as DuckDB relations.

Spreadsheets in much of Europe and Latin America save CSV files with ``;`` between fields, a
decimal comma (``3,5``) and, on Windows, the cp1252 encoding. What is detected and what must
be said:

* **Separator**: DuckDB's CSV sniffer picks it (``,``, ``;``, tab or ``|``); ``--delimiter``
  forces one. A ``.tsv`` file is tab-separated.
* **Decimal mark**: a decimal comma is assumed when the separator is not a comma and the numeric
  columns hold values such as ``3,5`` but none such as ``3.5``; ``--decimal`` forces it. Only
  plain numbers are rewritten (``3,5`` -> ``3.5``); anything else (``1.234,5``) is left as it is
  and reported by validation.
* **Encoding**: UTF-8, with or without a byte-order mark, is read directly. Any other encoding
  Python knows (``cp1252``, ``latin-1``, ``utf-16``) must be named with ``--encoding``; the
  file is then re-encoded to a temporary UTF-8 copy. A byte-order mark (UTF-8 or UTF-16) is
  the file's own declaration and wins over ``--encoding``, so one option can serve a folder
  that mixes Excel's "CSV" and "CSV UTF-8" files. A file that is not UTF-8 and has no encoding
  named is refused with the encoding charset-normalizer finds most likely (cp1252 when it fits
  as well as the others: the Windows default in Western Europe and the Americas), because a
  silent guess could corrupt store names.
"""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import charset_normalizer
import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from tools.data.validate import Problem, quote_ident, sql_literal

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_SAMPLE = 20_480  # rows DuckDB's sniffer reads
_DECIMAL_SAMPLE = 100_000  # rows read to decide on a decimal comma
_CHUNK = 1 << 20
# charset-normalizer cannot tell Windows code pages apart on short samples; cp1252 (Western
# Europe and the Americas) is by far the most common spreadsheet export among them.
_PREFERRED = ("cp1252", "utf_16", "cp1250")


class CsvOptions(BaseModel):
    """How to read CSV files; ``None`` means "detect" (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str | None = None
    decimal: Literal[".", ","] | None = None
    encoding: str | None = None

    @field_validator("delimiter", mode="before")
    @classmethod
    def _one_character(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value)
        text = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
        if len(text) != 1 or text in "\"'\r\n":
            raise ValueError(
                f"the delimiter must be one character such as ';', ',', '|' or tab, got {value!r}"
            )
        return text

    @field_validator("decimal", mode="before")
    @classmethod
    def _decimal_mark(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if value not in (".", ","):
            raise ValueError(f"the decimal mark must be '.' or ',', got {value!r}")
        return value

    @field_validator("encoding", mode="before")
    @classmethod
    def _known_encoding(cls, value: object) -> object:
        if value in (None, ""):
            return None
        try:
            return codecs.lookup(str(value)).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (use a Python codec name such as utf-8, cp1252, "
                "latin-1 or utf-16)"
            ) from None

    def over(self, fallback: CsvOptions) -> CsvOptions:
        """Return these options, with ``fallback``'s wherever these say nothing."""
        return CsvOptions(
            delimiter=self.delimiter if self.delimiter is not None else fallback.delimiter,
            decimal=self.decimal if self.decimal is not None else fallback.decimal,
            encoding=self.encoding if self.encoding is not None else fallback.encoding,
        )

    @classmethod
    def from_cli(
        cls, *, delimiter: str | None, decimal: str | None, encoding: str | None
    ) -> CsvOptions:
        """Build options from command-line values.

        Raises:
            ValueError: naming the option that is wrong and what it accepts.
        """
        try:
            return cls(delimiter=delimiter, decimal=decimal, encoding=encoding)  # type: ignore[arg-type]
        except ValidationError as exc:
            first = exc.errors()[0]
            option = "--" + str(first["loc"][0])
            raise ValueError(f"{option}: {first['msg'].removeprefix('Value error, ')}") from None


@dataclass(frozen=True)
class Source:
    """One readable file: the relation reading it and what it holds.

    Attributes:
        path: the file as given.
        relation: SQL relation over it (CSV values as text, Parquet values typed).
        columns: column name -> DuckDB type, in file order.
        delimiter: the CSV separator used (None for Parquet).
    """

    path: Path
    relation: str
    columns: dict[str, str]
    delimiter: str | None


def is_parquet(path: Path) -> bool:
    """Tell whether a file is Parquet by its name."""
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def open_source(
    con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions, workdir: Path
) -> Source:
    """Open a CSV or Parquet file for loading.

    Args:
        con: DuckDB connection.
        path: the file.
        options: CSV options (ignored for Parquet).
        workdir: folder for a re-encoded copy (kept until the caller deletes the folder).

    Returns:
        The source.

    Raises:
        ValueError: one line saying why the file cannot be read and, when it can tell, how to
            read it (an encoding to name, for instance).
    """
    try:
        if path.stat().st_size == 0:
            raise ValueError("file is empty")
        if is_parquet(path):
            relation = f"read_parquet({sql_literal(str(path))})"
            delimiter = None
        else:
            text_path = path
            encoding = _bom_encoding(path) or options.encoding
            if encoding not in (None, "utf-8"):
                text_path = _transcode(path, encoding, workdir)
            delimiter = options.delimiter or _sniff_delimiter(con, text_path)
            relation = (
                f"read_csv({sql_literal(str(text_path))}, header = true, all_varchar = true, "
                f"delim = {sql_literal(delimiter)})"
            )
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except (duckdb.Error, ValueError) as exc:
        raise ValueError(read_error(path, exc, options)) from None
    return Source(path, relation, {str(r[0]): str(r[1]) for r in rows}, delimiter)


def _bom_encoding(path: Path) -> str | None:
    """Return the encoding a byte-order mark declares (it wins over any encoding option)."""
    with _open_bytes(path) as f:
        start = f.read(4)
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8"  # DuckDB skips the mark itself
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _sniff_delimiter(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    if path.name.lower().endswith(".tsv"):
        return "\t"
    try:
        row = con.execute(
            "SELECT Delimiter, len(Columns) FROM sniff_csv(?, sample_size = ?)",
            [str(path), _SNIFF_SAMPLE],
        ).fetchone()
    except duckdb.Error:
        return ","  # reading it will say what is wrong
    # A "delimiter" that yields one column, or an exotic one, is a sniffing accident.
    if row is None or row[0] not in DELIMITERS or int(row[1]) < 2:
        return ","
    return str(row[0])


def numbers_sql(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    columns: Iterable[str],
    decimal: Literal[".", ","] | None,
) -> str:
    """Return the source's relation with decimal commas in ``columns`` made decimal points.

    Args:
        con: DuckDB connection.
        source: an opened source.
        columns: its columns that feed numeric contract columns.
        decimal: the decimal mark, or None to detect it (see the module docstring).

    Returns:
        A SQL relation with the same columns.
    """
    text_cols = [c for c in dict.fromkeys(columns) if source.columns.get(c) == "VARCHAR"]
    if not text_cols or source.delimiter is None:
        return source.relation
    comma = r"^\s*[+-]?\d*,\d+\s*$"
    if decimal is None:
        if source.delimiter == ",":
            return source.relation
        decimal = _detect_decimal(con, source.relation, text_cols, comma)
    if decimal == ".":
        return source.relation
    replaced = ", ".join(
        f"CASE WHEN regexp_matches({quote_ident(c)}, {sql_literal(comma)}) "
        f"THEN replace({quote_ident(c)}, ',', '.') ELSE {quote_ident(c)} END AS {quote_ident(c)}"
        for c in text_cols
    )
    return f"(SELECT * REPLACE ({replaced}) FROM {source.relation})"


def _detect_decimal(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], comma: str
) -> Literal[".", ","]:
    """',' when sampled numbers are written 3,5 and none 3.5; otherwise '.'."""
    dot = r"^\s*[+-]?\d*\.\d+\s*$"

    def any_match(pattern: str) -> str:
        tests = " OR ".join(
            f"regexp_matches({quote_ident(c)}, {sql_literal(pattern)})" for c in columns
        )
        return f"coalesce(bool_or({tests}), false)"

    row = con.execute(
        f"SELECT {any_match(comma)}, {any_match(dot)} "
        f"FROM (SELECT * FROM {relation} LIMIT {_DECIMAL_SAMPLE})"
    ).fetchone()
    return "," if row is not None and row[0] and not row[1] else "."


def read_error(path: Path, exc: Exception, options: CsvOptions) -> str:
    """Say in one line why a file could not be read, without DuckDB's list of fixes.

    For a CSV file that is not UTF-8 and whose encoding was not named, the line names the
    encoding the file most likely has and the option that reads it.
    """
    if isinstance(exc, ValueError) and not isinstance(exc, duckdb.Error):
        return str(exc)
    if is_parquet(path):
        kind = "Parquet"
    else:
        kind = "CSV (UTF-8 text, comma- or semicolon-separated, a header row, balanced quotes)"
        if options.encoding in (None, "utf-8"):
            hint = encoding_hint(path)
            if hint:
                return f"file cannot be read as CSV: {hint}"
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    detail = lines[1] if len(lines) > 1 and "sniffing" in lines[0] else lines[0]
    return f"file cannot be read as {kind}: {detail}"


def unreadable(table: str, path: Path, exc: Exception, options: CsvOptions) -> Problem:
    """Return a file-level problem saying why ``path`` could not be read (:func:`read_error`)."""
    return Problem(
        table=table,
        source=path.name,
        column=None,
        problem=read_error(path, exc, options),
        count=0,
        examples=[],
    )


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(byte offset, byte value, line number) of the first byte not valid in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset, line = 0, 1
    with _open_bytes(path) as f:
        while chunk := f.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = exc.start if 0 <= exc.start < len(chunk) else 0
                return offset + bad, chunk[bad], line + chunk.count(b"\n", 0, bad)
            offset += len(chunk)
            line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset, 0, line
    return None


def encoding_hint(path: Path) -> str | None:
    """Why a file is not UTF-8 text and which ``--encoding`` would read it; None if it is."""
    with _open_bytes(path) as f:
        head = f.read(_CHUNK)
    if b"\x00" in head:
        # UTF-16 text (Excel's "Unicode text") is full of NUL bytes; anything else is binary.
        wide = charset_normalizer.from_bytes(head).best()
        if wide is None or not wide.encoding.startswith(("utf_16", "utf_32")):
            return "it is not a text file (it contains NUL bytes)"
        name = codecs.lookup(wide.encoding).name
        return f"it is {name} text, not UTF-8: load it with --encoding {name}"
    bad = _first_bad_byte(path, "utf-8")
    if bad is None:
        return None
    offset, value, line = bad
    with _open_bytes(path) as f:
        f.seek(max(0, offset - 32_768))
        sample = head[:65_536] + f.read(65_536)
    matches = list(charset_normalizer.from_bytes(sample))
    where = f"it is not UTF-8 text (byte 0x{value:02X} on line {line})"
    if not matches:
        return f"{where} and its encoding is unknown: save it as UTF-8, or name it with --encoding"
    # Short samples fit many code pages equally well: among the least chaotic readings,
    # prefer the common spreadsheet encodings.
    least = min(m.chaos for m in matches)
    candidates = list(
        dict.fromkeys(
            codecs.lookup(e).name
            for m in matches
            if m.chaos <= least + 0.01
            for e in [m.encoding, *m.could_be_from_charset]
        )
    )
    preferred = [codecs.lookup(e).name for e in _PREFERRED]
    likely = next((e for e in preferred if e in candidates), candidates[0])
    others = [e for e in candidates if e != likely][:3]
    also = f" (or {', '.join(others)})" if others else ""
    return f"{where}; it looks like {likely}{also}: load it with --encoding {likely}"


def _transcode(path: Path, encoding: str, workdir: Path) -> Path:
    """Write a UTF-8 copy of a text file in ``encoding`` under ``workdir``; return its path.

    Raises:
        ValueError: a byte that is not valid in ``encoding``, with its line.
    """
    target = workdir / f"{len(list(workdir.iterdir()))}_{path.name.removesuffix('.gz')}"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with _open_bytes(path) as raw, target.open("w", encoding="utf-8", newline="") as out:
        try:
            while chunk := raw.read(_CHUNK):
                out.write(decoder.decode(chunk))
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            bad = _first_bad_byte(path, encoding)
            where = f" (byte 0x{bad[1]:02X} on line {bad[2]})" if bad else ""
            hint = encoding_hint(path) or "it is UTF-8: drop --encoding"
            raise ValueError(f"file is not {encoding} text{where}; {hint}") from None
    return target
