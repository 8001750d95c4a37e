"""Bounded input: read only regular files of a sane size, and quote values briefly.

Everything a project holds is untrusted. A FIFO in place of ``rockcraft.yaml`` would block a
plain ``open()`` forever, and a symlink to ``/dev/zero`` would never end; a YAML alias bomb is
tiny on disk but enormous once printed. So files are opened without blocking, checked to be
regular files, and read up to a cap; and values quoted in messages are cut short.
"""

import os
import reprlib
import stat
from pathlib import Path
from typing import Any

from .errors import ProjectError

# A rockcraft.yaml or requirements file is a few KiB; a Python module rarely passes 1 MiB.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_SOURCE_BYTES = 8 * 1024 * 1024

_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str:
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_regular_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Return the bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Opening with O_NONBLOCK means a FIFO never blocks us; fstat on the opened descriptor
    decides, so a file swapped between a check and the open cannot slip through.

    Raises:
        FileNotFoundError: the path does not exist (callers word that case themselves).
        ProjectError: it is not a regular file, is larger than ``limit``, or cannot be read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ProjectError([f"{path} cannot be read ({err.strerror}): make it a readable file"])
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ProjectError(
                [f"{path} is {_kind(mode)}, not a regular file: make it a regular file"]
            )
        data = _read_up_to(fd, limit + 1)
    except OSError as err:
        raise ProjectError([f"{path} cannot be read ({err.strerror}): make it readable"])
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ProjectError(
            [f"{path} is larger than {limit // 1024} KiB: that is not a project file we read"]
        )
    return data


def _read_up_to(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_regular_text(path: Path, limit: int = MAX_CONFIG_BYTES, errors: str = "strict") -> str:
    """``read_regular_file`` decoded as UTF-8 (``errors`` as for ``bytes.decode``).

    Raises:
        FileNotFoundError: the path does not exist.
        ProjectError: as ``read_regular_file``, or the bytes are not UTF-8.
    """
    data = read_regular_file(path, limit)
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        raise ProjectError([f"{path} cannot be read ({err}): make it a readable UTF-8 file"])


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 2
_SHORT.maxdict = 3
_SHORT.maxlist = 4
_SHORT.maxtuple = 4
_SHORT.maxset = 4
_SHORT.maxstring = 40
_SHORT.maxother = 40
_MAX_QUOTE = 80


def short_repr(value: Any) -> str:
    """A repr of ``value`` of at most ~80 characters, however large or nested the value is."""
    text = _SHORT.repr(value)
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."
