"""Safe, atomic files: the one model/checkpoint format of the project.

An archive is a zip holding ``manifest.json`` (format version, kind, config, metadata) and one
``.npy`` member per array. Loading never unpickles: JSON is parsed with ``json`` and arrays with
``numpy.lib.format.read_array(..., allow_pickle=False)``, so a crafted file can fail to load but
cannot run code. Every write goes to a temporary file in the target directory, is flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on POSIX), so an interrupted
save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

FORMAT_NAME = "agents-zoo-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Refuse archives whose members declare more than this many bytes once decompressed
# (a zip bomb); models here are megabytes, an Atari replay buffer a few GiB.
DEFAULT_MAX_BYTES = 16 * 2**30
_ARRAY_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class ArchiveError(ValueError):
    """A file is not a valid agents-zoo archive (corrupt, crafted, or of another kind)."""


@dataclass
class Archive:
    kind: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def _temporary_sibling(path: Path, suffix: str) -> Iterator[Path]:
    """A temporary file next to ``path``; on success fsync it, rename it over ``path`` and
    fsync the folder (so the rename itself is durable); on failure remove it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600 files; a saved model or result should get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary sibling of ``path``; on success fsync it and rename it over ``path``."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', got {mode!r}")
    with _temporary_sibling(Path(path), ".tmp") as tmp:
        with open(tmp, mode) as handle:
            yield handle


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line by rewriting the file atomically: a crash leaves the old or the new file."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"  # a torn last line from a foreign writer stays on its own line
    atomic_write_bytes(path, old + line.rstrip("\n").encode("utf-8") + b"\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """For libraries that only write to a path: ``writer(tmp_path)`` then rename over ``path``."""
    path = Path(path)
    with _temporary_sibling(path, path.suffix or ".tmp") as tmp:
        writer(tmp)


# ----------------------------------------------------------------------------- JSON helpers
def to_jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and tuples so ``json.dumps`` accepts them."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- archives
def save_archive(
    path: str | os.PathLike,
    *,
    kind: str,
    config: dict[str, Any],
    arrays: dict[str, np.ndarray] | None = None,
    metadata: dict[str, Any] | None = None,
    compress: bool = False,
) -> Path:
    """Write an archive atomically. ``kind`` names what it holds, e.g. ``"agent/ppo"``."""
    arrays = arrays or {}
    for name, array in arrays.items():
        if not _ARRAY_NAME.match(name) or ".." in name.split("/"):
            raise ValueError(f"array name {name!r} must match {_ARRAY_NAME.pattern} without '..'")
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which cannot be saved without pickle")
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": to_jsonable(config),
        "metadata": to_jsonable({**library_versions(), **(metadata or {})}),
        "arrays": sorted(arrays),
    }
    path = Path(path)
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_open(path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=compression, allowZip64=True) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            for name in sorted(arrays):
                buffer = io.BytesIO()
                # not ascontiguousarray: it turns 0-d arrays into 1-d ones
                np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
                archive.writestr(f"arrays/{name}.npy", buffer.getvalue())
    return path


def load_archive(
    path: str | os.PathLike,
    *,
    expected_kind: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Archive:
    """Read an archive without pickle; reject anything malformed with an ``ArchiveError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no archive at {str(path)!r}")
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{str(path)!r} is not a valid agents-zoo archive (not a readable zip: {exc})") from None
    with zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise ArchiveError(f"{str(path)!r}: unsafe member path {name!r} in archive")
            total += info.file_size
        if total > max_bytes:
            raise ArchiveError(
                f"{str(path)!r}: members declare {total} uncompressed bytes, more than the limit {max_bytes}"
            )
        names = {info.filename for info in infos}
        if MANIFEST not in names:
            raise ArchiveError(f"{str(path)!r} has no {MANIFEST}: not an agents-zoo archive")
        try:
            manifest = json.loads(_read_member(zf, MANIFEST, path).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchiveError(f"{str(path)!r}: {MANIFEST} is not valid JSON ({exc})") from None
        _check_manifest(manifest, path)
        if expected_kind is not None and not _kind_matches(manifest["kind"], expected_kind):
            raise ArchiveError(f"{str(path)!r} holds {manifest['kind']!r}, expected {expected_kind!r}")
        arrays: dict[str, np.ndarray] = {}
        for name in manifest["arrays"]:
            member = f"arrays/{name}.npy"
            if member not in names:
                raise ArchiveError(f"{str(path)!r}: manifest lists array {name!r} but {member} is missing")
            raw = _read_member(zf, member, path)
            try:
                arrays[name] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            except ValueError as exc:  # object arrays need pickle: refused here
                raise ArchiveError(f"{str(path)!r}: array {name!r} cannot be read without pickle ({exc})") from None
            except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
                raise ArchiveError(f"{str(path)!r}: array {name!r} is corrupt ({exc})") from None
    return Archive(kind=manifest["kind"], config=manifest["config"], arrays=arrays, metadata=manifest["metadata"])


def _read_member(zf: zipfile.ZipFile, member: str, path: Path) -> bytes:
    try:
        return zf.read(member)
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise ArchiveError(f"{str(path)!r}: member {member!r} is corrupt or truncated ({exc})") from None


def _kind_matches(kind: str, expected: str) -> bool:
    # "agent" matches "agent/ppo"; "agent/ppo" matches only itself.
    return kind == expected or kind.startswith(expected.rstrip("/") + "/")


def _check_manifest(manifest: Any, path: Path) -> None:
    where = f"{str(path)!r}: {MANIFEST}"
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{where} must be a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT_NAME:
        raise ArchiveError(f"{where} has format {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise ArchiveError(f"{where} has format_version {version!r}; this version reads 1..{FORMAT_VERSION}")
    expected_types = {"kind": str, "config": dict, "metadata": dict, "arrays": list}
    for key, typ in expected_types.items():
        if not isinstance(manifest.get(key), typ):
            raise ArchiveError(
                f"{where} field {key!r} must be {typ.__name__}, got {type(manifest.get(key)).__name__}"
            )
    for name in manifest["arrays"]:
        if not isinstance(name, str) or not _ARRAY_NAME.match(name) or ".." in name.split("/"):
            raise ArchiveError(f"{where} lists an invalid array name {name!r}")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a saved file, stored in every archive."""
    import platform
    from importlib import metadata as importlib_metadata

    versions = {"python": platform.python_version()}
    for dist in ("agents-zoo", "tensorflow", "keras", "gymnasium", "numpy"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            pass
    return {"versions": versions}
