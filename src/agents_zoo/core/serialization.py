"""Safe, atomic files: the one model/checkpoint format of the project.

An archive is a zip holding ``manifest.json`` (format version, kind, config, metadata) and one
``.npy`` member per array. Loading never unpickles: JSON is parsed with ``json`` and arrays from
their ``.npy`` header and raw bytes (object dtypes refused), so a crafted file can fail to load but
cannot run code; nor can it make the loader allocate more than a limit derived from the file's
own size (:mod:`agents_zoo.core.bounded_zip`). Every write is atomic
(:mod:`agents_zoo.core.atomic_files`), so an interrupted save leaves the previous file intact.
The names of those two modules stay importable from here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from agents_zoo.core.atomic_files import (atomic_append_line, atomic_open, atomic_save, atomic_write_bytes,
                                          atomic_write_text)
from agents_zoo.core.bounded_zip import (MAX_EXTRA_BYTES, MAX_INFLATION, MIN_LOAD_BYTES, ArchiveError,
                                         PickleRequiredError, ZipReader, default_max_bytes, parse_npy)

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "MAX_MANIFEST_BYTES", "MAX_MANIFEST_DEPTH", "Archive",
    "errors_name_the_file", "to_jsonable", "save_archive", "load_archive", "json_depth", "library_versions",
    # re-exported: atomic writes (core.atomic_files) and bounded zip reading (core.bounded_zip)
    "atomic_append_line", "atomic_open", "atomic_save", "atomic_write_bytes", "atomic_write_text",
    "MAX_EXTRA_BYTES", "MAX_INFLATION", "MIN_LOAD_BYTES", "ArchiveError", "PickleRequiredError", "ZipReader",
    "default_max_bytes", "parse_npy",
]

FORMAT_NAME = "agents-zoo-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_ARRAY_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")

# The manifest is parsed into Python objects, up to ~8x its size for a list of numbers; real
# manifests measure 1-11 KiB (a uniform space bound is stored as one number).
MAX_MANIFEST_BYTES = 8 * 2**20
# Real manifests nest 9 levels at most (measured on PPO and DQN checkpoints: config -> env_state
# -> layers -> a layer -> its fields -> a generator's state -> ...). What is parsed from them is
# walked by code that may recurse or repr() values, so a manifest nested hundreds of levels deep
# (which json still parses) would end in a RecursionError far from the loader. 64 leaves a wide
# margin.
MAX_MANIFEST_DEPTH = 64


@dataclass
class Archive:
    kind: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- loading boundary
@contextlib.contextmanager
def errors_name_the_file(path: str | os.PathLike, error: type[ArchiveError] = ArchiveError) -> Iterator[None]:
    """Inside this block, a failure that only a file's content can cause while loading it (out of
    memory, numbers out of range, nesting too deep, TensorFlow running out of memory) becomes an
    ``error`` naming ``path``.

    The loaders refuse what they know to be wrong with an ``ArchiveError`` of their own; this is
    the net for the commands that load a file the user named (``evaluate``, ``expert inspect``),
    so whatever slips past the loaders' checks still says which file it was, in one line.
    """
    resource_errors: tuple[type[BaseException], ...] = (MemoryError, RecursionError, ArithmeticError)
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        resource_errors += (tensorflow.errors.ResourceExhaustedError,)
    try:
        yield
    except ArchiveError:
        raise
    except resource_errors as exc:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise error(f"{str(path)!r} could not be loaded: {type(exc).__name__}"
                    f"{': ' + detail if detail else ''}") from None


# ----------------------------------------------------------------------------- JSON conversion
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
    max_bytes: int | None = None,
) -> Archive:
    """Read an archive without pickle; reject anything malformed with an ``ArchiveError``.

    ``max_bytes`` bounds the bytes inflated from all members together (default:
    :func:`default_max_bytes` of the file's size); members are streamed and counted as they
    inflate, so a lying or bombing zip is stopped at the limit, not after.
    """
    with ZipReader(path, max_bytes) as reader:
        names = reader.names
        if MANIFEST not in names:
            raise ArchiveError(f"{reader.where} has no {MANIFEST}: not an agents-zoo archive")
        raw = reader.read_bytes(MANIFEST, limit=MAX_MANIFEST_BYTES)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise ArchiveError(f"{reader.where}: {MANIFEST} is nested too deeply to be a manifest") from None
        except ValueError as exc:
            # JSONDecodeError, UnicodeDecodeError, and the ValueError of an integer literal
            # longer than Python's int/str conversion limit (4300 digits)
            raise ArchiveError(f"{reader.where}: {MANIFEST} is not valid JSON ({exc})") from None
        del raw
        if json_depth(manifest) > MAX_MANIFEST_DEPTH:
            raise ArchiveError(f"{reader.where}: {MANIFEST} is nested more than {MAX_MANIFEST_DEPTH} levels deep: "
                               "too deeply to be a manifest")
        _check_manifest(manifest, reader.path)
        if expected_kind is not None and not _kind_matches(manifest["kind"], expected_kind):
            raise ArchiveError(f"{reader.where} holds {manifest['kind']!r}, expected {expected_kind!r}")
        arrays: dict[str, np.ndarray] = {}
        for name in manifest["arrays"]:
            member = f"arrays/{name}.npy"
            if member not in names:
                raise ArchiveError(f"{reader.where}: manifest lists array {name!r} but {member} is missing")
            try:
                arrays[name] = reader.read_array(member, f"array {name!r}")
            except PickleRequiredError:
                raise PickleRequiredError(f"{reader.where}: array {name!r} cannot be read without pickle: it holds "
                                          "Python objects (dtype object), which are never loaded") from None
    return Archive(kind=manifest["kind"], config=manifest["config"], arrays=arrays, metadata=manifest["metadata"])


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in a parsed JSON value (a scalar is 0), without recursion;
    the walk stops at the first container deeper than ``MAX_MANIFEST_DEPTH`` (returning that depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_MANIFEST_DEPTH:
            break  # deep enough to refuse: no need to walk the rest
        stack.extend((child, depth + 1) for child in children)
    return deepest


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
