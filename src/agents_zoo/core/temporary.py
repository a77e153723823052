"""Temporary files and folders whose owner can be told from their name, so a later run can
remove the ones a killed process left behind.

A process killed with SIGKILL (or by the OOM killer, or a power cut) runs no cleanup: the
temporary sibling of a file it was writing, or the temporary folder of a run, stays forever.
Every temporary made here is named ``<prefix><pid>-<host>.<random><suffix>``: ``pid`` is the
creating process, ``host`` an 8-hex-digit tag of the machine's host name. A name of that form
is *stale* when its host tag is this machine's and no process with that pid is alive here; only
stale names are ever removed, and only by a process about to make a temporary of the same
prefix (the same target file, or the same kind of folder).

Why both parts: the pid alone would let a process on another machine writing to a shared
folder (NFS) have its live temporary removed here, where its pid means nothing; the host tag
keeps each machine to its own temporaries. A pid reused by an unrelated live process makes a
stale name look alive: it is then left, never removed wrongly, until that process ends.
Temporaries named by earlier versions (``mkstemp``'s random names) carry no owner and are
never touched.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

_OWNER = re.compile(r"^(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{8})\.[0-9a-f]{8,32}$")


def host_tag() -> str:
    """8 hex digits naming this machine (a hash of its host name)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def owned_name(prefix: str, suffix: str = "") -> str:
    """A fresh name ``<prefix><pid>-<host>.<random><suffix>`` for a temporary of this process."""
    return f"{prefix}{os.getpid()}-{host_tag()}.{secrets.token_hex(8)}{suffix}"


def pid_is_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (of any user)."""
    if pid <= 0:
        return True  # 0 and negatives address process groups: never treat them as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def stale_owner(name: str, prefix: str, suffix: str = "") -> int | None:
    """The pid of the dead process that made temporary ``name`` here, or None if it is not one
    of ours of this prefix and suffix, belongs to another machine, or its owner is alive."""
    if not name.startswith(prefix) or not name.endswith(suffix) or len(name) <= len(prefix) + len(suffix):
        return None
    middle = name[len(prefix): len(name) - len(suffix)] if suffix else name[len(prefix):]
    match = _OWNER.match(middle)
    if match is None or match["host"] != host_tag():
        return None
    pid = int(match["pid"])
    if pid == os.getpid() or pid_is_alive(pid):
        return None
    return pid


def remove_stale(folder: str | os.PathLike, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the temporaries ``<prefix>...<suffix>`` in ``folder`` whose owner died; return them.

    Best effort: a name that vanishes meanwhile (another process cleaning too) or cannot be
    removed is skipped; this never fails the write that triggered it.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if stale_owner(entry.name, prefix, suffix) is None:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def create_owned_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create (exclusively) an empty temporary ``folder/<prefix><pid>-<host>.<random><suffix>``.

    Made with mode 0o666 minus the umask, as ``open`` would make the target itself (``mkstemp``
    would make it 0600, and the rename would keep that).
    """
    for _ in range(100):
        path = folder / owned_name(prefix, suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, f"no unused temporary name in {str(folder)!r}")


@contextlib.contextmanager
def owned_temporary_directory(prefix: str, dir: str | os.PathLike | None = None) -> Iterator[str]:
    """Like ``tempfile.TemporaryDirectory(prefix=prefix)``, but named with its owner, and removing
    the folders of this prefix that killed processes left behind before making a new one."""
    parent = Path(dir if dir is not None else tempfile.gettempdir())
    remove_stale(parent, prefix)
    for _ in range(100):
        path = parent / owned_name(prefix)
        try:
            path.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, f"no unused temporary folder name in {str(parent)!r}")
    try:
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
