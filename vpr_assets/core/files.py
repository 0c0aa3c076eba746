"""Reading untrusted files without hanging or following links out of where they belong.

A named pipe (FIFO) blocks `open()` for ever until a writer comes; a character device such as
/dev/zero never ends; a symbolic link may point at /etc/passwd, nowhere, or itself. Every file a
batch or a manifest names is therefore classified with `lstat` first and opened non-blocking,
and only regular files are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above a 1200 dpi 16-bit postcard scan (~120 MB)


class FileRefused(Exception):
    """A path that is not a readable regular file; `reason` is short and machine-readable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


_KINDS = ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"),
          (stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"))


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def link_problem(path: Path, inside: Path) -> tuple[str, str]:
    """Why a symbolic link is not read: (reason, detail). Links are never followed; the reason
    says whether it dangles, loops, or points inside or outside `inside`."""
    try:
        target = os.readlink(path)
    except OSError as exc:
        return "unreadable", f"{type(exc).__name__}: {exc}"
    detail = f"symbolic link to {os.fsencode(target).decode('utf-8', 'backslashreplace')!r}"
    try:
        resolved = Path(path).resolve(strict=True)
    except RuntimeError:  # Python < 3.13 raises RuntimeError on a loop
        return "link_loop", detail + " (a loop)"
    except OSError as exc:
        if getattr(exc, "errno", None) == 40:  # ELOOP
            return "link_loop", detail + " (a loop)"
        return "dangling_link", detail + " (nothing there)"
    inside = Path(inside).resolve()
    if not resolved.is_relative_to(inside):
        return "link_outside_batch", detail + " (outside the batch: never followed)"
    return "link_in_batch", detail + " (links are not followed; the target itself is read if it is in the batch)"


def read_regular_file(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_FILE_BYTES,
                      follow_links: bool = True) -> bytes:
    """The bytes of a regular file, or `FileRefused` (special file, link, too large) or OSError.

    Opened with O_NONBLOCK, so a FIFO never blocks; the type is checked on the open descriptor
    (`fstat`), so a file swapped for a pipe after a check cannot hang the read either."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_links and exc.errno == 40:  # ELOOP: O_NOFOLLOW met a link
            raise FileRefused("symlink", "symbolic link (not followed)") from None
        if exc.errno == 6:  # ENXIO: a FIFO with no reader/writer, or a socket
            raise FileRefused("special_file", f"cannot be read as a file ({exc.strerror})") from None
        raise
    with os.fdopen(fd, "rb", closefd=True) as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused("special_file", f"a {kind_of(st.st_mode)}, not a regular file: never read")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileRefused("too_large", f"{st.st_size:,} bytes > limit {max_bytes:,} bytes")
        os.set_blocking(fh.fileno(), True)
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:  # grew while we read
        raise FileRefused("too_large", f"more than {max_bytes:,} bytes")
    return data


def is_regular_file(path: str | os.PathLike) -> bool:
    """True for a regular file (links followed), never blocking on a FIFO."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
