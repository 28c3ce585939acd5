"""Flat records (JSONL objects or CSV rows) for the sibling tasks' readers: legal, sentiment, captioning.

Decisions:
- Strict: an unknown field or column is an error, since a misspelt ``summmary`` would otherwise
  surface later as a missing summary. Every error names ``file:line: field``.
- Files are decoded with ``surrogateescape`` and each value is checked for the escaped bytes, so a
  wrong encoding is reported with the line, column and *field* it is in rather than only the line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Literal

from tunedesk.errors import DataError, printable
from tunedesk.files import csv_records, jsonl_lines, parse_json

RecordFormat = Literal["jsonl", "csv"]
Record = dict[str, object]
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def read_records(
    path: Path,
    fields: Collection[str],
    fmt: RecordFormat | None = None,
    required: Collection[str] = (),
    allowed_extra: Collection[str] = (),
) -> Iterator[tuple[int, Record]]:
    """``(line, record)`` pairs from a JSONL or CSV file whose keys are among ``fields``.

    JSON values are returned as parsed; CSV values are strings and a CSV record's line is the line it
    starts on. Unknown keys, a CSV header without a ``required`` column, unreadable lines and bytes
    that are not UTF-8 raise ``DataError``; missing values are left to ``text_field``.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    chosen = fmt or _guess_format(path, text)
    known = [*fields, *allowed_extra]
    if chosen == "jsonl":
        records = _jsonl_records(path, text, known)
    else:
        records = _csv_records(path, text, known, required)
    for line, record in records:
        for name, value in record.items():
            if isinstance(value, str) and _ESCAPED_BYTE.search(value):
                raise _encoding_error(path, text, name)
        yield line, record


def text_field(path: Path, line: int, record: Record, name: str, required: bool = True, strip: bool = True) -> str:
    """``record[name]`` as text (a JSON integer is accepted for ``id``); a missing or blank value is an
    error when ``required``, and ``""`` otherwise."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DataError(f"{path}:{line}: {name}: {'missing' if value is None else 'empty'}")
        return ""
    if name == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{path}:{line}: {name}: expected text, got {type(value).__name__} {value!r}")
    return value.strip() if strip else value


def _guess_format(path: Path, text: str) -> RecordFormat:
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def _jsonl_records(path: Path, text: str, known: Collection[str]) -> Iterator[tuple[int, Record]]:
    for number, line in jsonl_lines(text):
        if not line.strip():
            continue
        record = parse_json(line, f"{path}:{number}: record", DataError)
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: record: expected a JSON object, got {type(record).__name__}")
        for key in record:
            if key not in known:
                raise DataError(f"{path}:{number}: {printable(key)}: unknown field; expected {', '.join(known)}")
        yield number, record


def _csv_records(
    path: Path, text: str, known: Collection[str], required: Collection[str]
) -> Iterator[tuple[int, Record]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"{path}:1: header: unreadable CSV: {exc}") from None
    if any(_ESCAPED_BYTE.search(column) for column in header):
        raise _encoding_error(path, text, "header")
    missing = [column for column in required if column not in header]
    if missing:
        raise DataError(f"{path}:1: header: missing column(s) {', '.join(missing)}")
    unknown = [column for column in header if column not in known]
    if unknown:
        names = ", ".join(map(printable, unknown))
        raise DataError(f"{path}:1: header: unknown column(s) {names}; expected {', '.join(known)}")
    for line, row in csv_records(reader, path):
        if row:
            if len(row) > len(header):
                raise DataError(f"{path}:{line}: record: {len(row)} values for {len(header)} columns")
            yield line, dict(zip(header, row, strict=False))


def _encoding_error(path: Path, text: str, field: str) -> DataError:
    match = _ESCAPED_BYTE.search(text)
    assert match is not None, "called only when some value holds an escaped byte"
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    byte = ord(match.group()) - 0xDC00
    return DataError(
        f"{path}:{line}: {field}: not UTF-8 (byte 0x{byte:02x} at column {column}); re-save the file as UTF-8"
    )
