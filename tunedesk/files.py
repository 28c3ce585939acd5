"""Writing outputs so that nothing is ever half-written: one way for files, one for directories.

Decisions:
- A file is written to a temporary sibling and ``os.replace``d over the target, so readers see the
  old file or the new one, never a prefix. Text is written as given (no newline translation).
- A directory is built in a temporary sibling and renamed into place; an existing one is moved
  aside first and removed after the swap. On any error (Ctrl-C included) the temporary one goes
  and the previous output stays.
- Files get the mode any other new file would (0666 less the umask): ``mkstemp`` makes them
  owner-only, which is wrong for a shared data file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Literal, TextIO, overload


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
