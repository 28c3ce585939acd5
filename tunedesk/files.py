"""Reading inputs strictly, and writing outputs so that nothing is ever half-written.

Decisions:
- Text inputs (YAML configs, JSON and JSONL files) are strict UTF-8; a leading BOM is dropped. Every
  way a file can be unreadable (missing, not UTF-8, broken syntax, nested past Python's recursion
  limit, an integer too long to convert, a lone surrogate escape that no UTF-8 file can hold) is the
  caller's ``TunedeskError`` naming ``file:line`` and, where there is one, the field: never a traceback.
- A file is written to a temporary sibling and ``os.replace``d over the target, so readers see the
  old file or the new one, never a prefix. Text is written as given (no newline translation).
- A directory is built in a temporary sibling and renamed into place; an existing one is moved
  aside first and removed after the swap. On any error (Ctrl-C included) the temporary one goes
  and the previous output stays.
- Files get the mode any other new file would (0666 less the umask): ``mkstemp`` makes them
  owner-only, which is wrong for a shared data file.
- A CSV cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP's CSV-injection advice):
  = + - @ first, also behind blanks or control characters a spreadsheet may skip, and their full-width
  forms; a cell starting with tab, CR, LF or NUL too (ASVS 1.2.10). Writers end rows in CRLF (RFC 4180), so
  a CR inside a cell gets it quoted instead of starting a new row.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, TextIO, overload

from tunedesk.errors import ConfigError, DataError, TunedeskError

ErrorType = type[TunedeskError]
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_FORMULA_START = re.compile(r"[\s\x00-\x1f\x7f]*[=+\-@\uff1d\uff0b\uff0d\uff20]|[\t\r\n\x00]")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a leading apostrophe when a spreadsheet would run it as a formula, else as it is."""
    return "'" + cell if _FORMULA_START.match(cell) else cell


def read_text(path: Path, error: ErrorType = ConfigError) -> str:
    """``path`` as text: strict UTF-8 with a leading BOM dropped; ``error`` naming ``path:line`` otherwise."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {column}); re-save the file as UTF-8"
        ) from None


def parse_json(text: str, where: str, error: ErrorType = ConfigError) -> Any:
    """``text`` as JSON; ``error`` starting with ``where`` (``file:line``) when it is not readable JSON."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        position = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise error(f"{where}: invalid JSON: {exc.msg} at {position}") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise error(f"{where}: unreadable JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            _check_unicode(value, "", where, error)
        except RecursionError:
            raise error(f"{where}: JSON nested too deeply to read") from None
    return value


def _check_unicode(value: Any, field: str, where: str, error: ErrorType) -> None:
    """A lone ``\\ud800``-style escape decodes to text that no UTF-8 file or database can hold."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise error(f"{where}: {field or 'value'}: a lone surrogate escape (\\ud800-\\udfff) is not text") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key, field or "key", where, error)
            _check_unicode(item, f"{field}.{key}" if field else str(key), where, error)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{field}[{index}]", where, error)


def csv_records(reader: Any, path: Path) -> Iterator[tuple[int, Any]]:
    """The rows of a ``csv.reader``/``csv.DictReader`` after its header, each with the line it starts on;
    unreadable CSV (a field over the size limit...) is a ``DataError`` naming that line."""
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{line}: record: unreadable CSV: {exc}") from None
        yield line, row
        line = reader.line_num + 1


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of JSON Lines text, split on ``\\n`` alone: U+2028, U+0085 and the like are
    ordinary characters inside a JSON string, where ``str.splitlines`` would cut the line in two."""
    yield from enumerate(text.split("\n"), start=1)


def load_json(path: Path, error: ErrorType = ConfigError) -> Any:
    """A whole JSON file (``results.json``, a manifest); errors name ``path:line``."""
    return parse_json(read_text(path, error), str(path), error)


def load_yaml(path: Path, error: ErrorType = ConfigError) -> Any:
    """A YAML file read with ``yaml.safe_load``; errors name ``path:line``."""
    import yaml

    text = read_text(path, error)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise error(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        raise error(f"{path}:{line}: not valid YAML: character {exc.character!r} is not allowed") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise error(f"{path}: YAML nested too deeply to read") from None
    except ValueError as exc:  # a timestamp like 2024-13-45, an integer longer than Python converts
        raise error(f"{path}: unreadable YAML value: {exc}") from None


@overload
def atomic_writer(
    path: Path, binary: Literal[False] = False, mode: int | None = None
) -> AbstractContextManager[TextIO]: ...
@overload
def atomic_writer(path: Path, binary: Literal[True], mode: int | None = None) -> AbstractContextManager[IO[bytes]]: ...


def atomic_writer(path: Path, binary: bool = False, mode: int | None = None) -> AbstractContextManager[Any]:
    """A handle (UTF-8 text, or bytes) whose content replaces ``path`` only when the block ends without error.

    ``mode`` (e.g. 0o600 for secrets) replaces the usual 0666-less-umask; the file never has a wider one."""
    return _atomic_writer(path, binary, mode)


@contextmanager
def _atomic_writer(path: Path, binary: bool, mode: int | None) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        opened = os.fdopen(descriptor, "wb") if binary else os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        with opened as handle:
            yield handle
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str, mode: int | None = None) -> None:
    with atomic_writer(path, mode=mode) as handle:
        handle.write(text)


@contextmanager
def replacing_directory(out: Path) -> Iterator[Path]:
    """A fresh temporary directory to fill; it becomes ``out`` when the block ends without error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        yield tmp
        old = None
        if out.exists():
            old = out.parent / f".old-{out.name}-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
