"""Safe, atomic files: the one model/checkpoint format of the project.

An archive is a zip holding ``manifest.json`` (format version, kind, config, metadata) and one
``.npy`` member per array. Loading never unpickles: JSON is parsed with ``json`` and arrays from
their ``.npy`` header and raw bytes (object dtypes refused), so a crafted file can fail to load but
cannot run code; nor can it make the loader allocate more than a limit derived from the file's
own size (see ``default_max_bytes``). Every write goes to a temporary file in the target
directory, is flushed and fsynced, then renamed over the target (``os.replace`` is atomic on
POSIX), so an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from agents_zoo.core import temporary

FORMAT_NAME = "agents-zoo-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_ARRAY_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")

# ----------------------------------------------------------------------------- loading limits
# What a file may make the loader allocate is bounded by the file's own size, never by what the
# file says about itself (a zip's central directory and a .npy header are both written by
# whoever made the file). The bytes inflated from all members together may reach
#
#     default_max_bytes(size) = max(MIN_LOAD_BYTES, min(MAX_INFLATION * size, size + MAX_EXTRA_BYTES))
#
# Measured on files the project writes (inflated bytes / file size):
# - models and checkpoints are stored uncompressed (the zip is only a container): 0.98-0.995
#   (PPO, DQN with its replay buffer, a VAE), so any size passes the ``size + MAX_EXTRA_BYTES``
#   branch, however large the replay buffer in it;
# - the same files saved with ``compress=True``: 1.1-1.4 once trained (float weights and
#   observations barely deflate), 3.2 for a fresh PPO whose Adam moments are all zeros;
# - demonstrations (``np.savez_compressed``): 1.1 (Pendulum) to 2.6 (CartPole, int64 actions),
#   and 41 for ragged episodes (one 500-step CartPole episode among 59 of ~10 steps: the zero
#   padding is most of the file) -- constant data is what deflates well.
# MAX_INFLATION = 64 keeps a margin over that worst layout and stops a deflate bomb (~1000x) at
# a sixteenth of its expansion; MIN_LOAD_BYTES lets any small file of constant data load (that
# ragged file inflates to 0.8 MiB); MAX_EXTRA_BYTES caps what decompression may add on top of
# the file's own size on any machine. ``max_bytes=`` overrides the limit for a file you trust.
MIN_LOAD_BYTES = 64 * 2**20
MAX_INFLATION = 64
MAX_EXTRA_BYTES = 2 * 2**30
# The manifest is parsed into Python objects, up to ~8x its size for a list of numbers; real
# manifests measure 1-11 KiB (a uniform space bound is stored as one number).
MAX_MANIFEST_BYTES = 8 * 2**20
# Real manifests nest 9 levels at most (measured on PPO and DQN checkpoints: config -> env_state
# -> layers -> a layer -> its fields -> a generator's state -> ...). What is parsed from them is
# walked by code that may recurse or repr() values, so a manifest nested hundreds of levels deep
# (which json still parses) would end in a RecursionError far from the loader. 64 leaves a wide
# margin.
MAX_MANIFEST_DEPTH = 64
# The longest .npy header numpy writes is a few hundred bytes; numpy itself refuses > 10000.
_MAX_NPY_HEADER = 10_000
_CHUNK = 2**20  # bytes inflated per read: a member never inflates more than this at once
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def default_max_bytes(file_size: int) -> int:
    """How many bytes a file of ``file_size`` bytes may inflate to when loaded (see above)."""
    return max(MIN_LOAD_BYTES, min(MAX_INFLATION * file_size, file_size + MAX_EXTRA_BYTES))


class ArchiveError(ValueError):
    """A file is not a valid agents-zoo archive (corrupt, crafted, or of another kind)."""


class PickleRequiredError(ArchiveError):
    """A ``.npy`` member holds Python objects (dtype object), which only pickle could read."""


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
    fsync the folder (so the rename itself is durable); on failure remove it.

    The temporary is named ``.<name>.<pid>-<host>.<random><suffix>`` (``core.temporary``): a
    process killed mid-write cannot remove its own, so each write first removes the temporaries
    of the same target whose owner process is dead, and only those.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    temporary.remove_stale(path.parent, prefix, suffix)
    tmp = temporary.create_owned_file(path.parent, prefix, suffix)
    try:
        yield tmp
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


class ZipReader:
    """Read members of a zip (an archive or an ``.npz``) as bytes or arrays, within a byte budget.

    Nothing the zip declares is trusted for allocation: members are inflated ``_CHUNK`` bytes at
    a time and counted, the count over all members read is held against ``max_bytes``, and a
    ``.npy`` header's shape must account for exactly the bytes that followed it before an array
    is made (the array then shares the member's buffer: no second copy, no allocation from the
    header). Only stored and deflated, unencrypted members are read: other methods (bzip2, lzma)
    cannot be inflated in bounded steps by ``zipfile``. Errors are ``error`` (an ``ArchiveError``
    by default) naming the file; an object array raises ``PickleRequiredError`` for the caller
    to word.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None,
                 error: type[ArchiveError] = ArchiveError, what: str = "a valid agents-zoo archive"):
        self.path = Path(path)
        self.where = repr(str(self.path))
        self.error = error
        if not self.path.is_file():
            raise FileNotFoundError(f"no archive at {str(self.path)!r}")
        self.file_size = self.path.stat().st_size
        self.max_bytes = default_max_bytes(self.file_size) if max_bytes is None else int(max_bytes)
        self.inflated = 0
        try:
            self.zf = zipfile.ZipFile(self.path, "r")
        except Exception as exc:  # noqa: BLE001
            # zipfile parses the central directory with failures beyond BadZipFile: a crafted
            # "version needed" is a NotImplementedError, a bad name encoding a UnicodeDecodeError,
            # ... Reading stops at the file's end, so none of them allocates beyond its size.
            raise error(f"{self.where} is not {what} (not a readable zip: {type(exc).__name__}: {exc})") from None
        try:
            self._check_members()
        except BaseException:
            self.zf.close()
            raise

    def __enter__(self) -> "ZipReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.zf.close()

    def _check_members(self) -> None:
        declared = 0
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in self.zf.infolist():
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise self.error(f"{self.where}: unsafe member path {name!r} in archive")
            self.infos[name] = info
            declared += info.file_size
        # A cheap early refusal; the real limit is enforced on the bytes actually inflated.
        if declared > self.max_bytes:
            raise self.error(
                f"{self.where}: members declare {declared} uncompressed bytes, more than the limit "
                f"{self.max_bytes} for a file of {self.file_size} bytes"
            )

    @property
    def names(self) -> set[str]:
        return set(self.infos)

    def read_bytes(self, member: str, limit: int | None = None) -> bytearray:
        """The member's bytes, inflated in bounded steps and counted against the budget."""
        info = self.infos[member]
        if info.compress_type not in _ZIP_METHODS:
            raise self.error(f"{self.where}: member {member!r} uses zip compression method {info.compress_type}; "
                             f"expected {' or '.join(_ZIP_METHODS.values())}")
        if info.flag_bits & 0x1:
            raise self.error(f"{self.where}: member {member!r} is encrypted; expected a plain member")
        buffer = bytearray()
        try:
            with self.zf.open(info) as handle:
                while True:
                    chunk = handle.read(_CHUNK)
                    if not chunk:
                        break
                    self.inflated += len(chunk)
                    if self.inflated > self.max_bytes:
                        raise self.error(
                            f"{self.where}: members inflate to more than the limit of {self.max_bytes} bytes "
                            f"for a file of {self.file_size} bytes (stopped in {member!r}); "
                            "a zip bomb, or pass a larger max_bytes for a file you trust"
                        )
                    if limit is not None and len(buffer) + len(chunk) > limit:
                        raise self.error(f"{self.where}: member {member!r} is larger than its limit of {limit} bytes")
                    buffer += chunk
        except ArchiveError:
            raise
        except Exception as exc:  # noqa: BLE001
            # BadZipFile (CRC, header mismatch), zlib.error, EOFError, NotImplementedError
            # (patched data), ...: whatever zipfile raises on bytes it did not write. Inflation
            # is bounded by the budget above, so no error here comes from the file's claims.
            raise self.error(f"{self.where}: member {member!r} is corrupt or truncated "
                             f"({type(exc).__name__}: {exc})") from None
        return buffer

    def read_array(self, member: str, label: str) -> np.ndarray:
        """A ``.npy`` member as an array; ``label`` names it in errors (e.g. "array 'w'")."""
        return parse_npy(self.read_bytes(member), f"{self.where}: {label}", self.error)


def parse_npy(raw: bytearray, what: str, error: type[ArchiveError] = ArchiveError) -> np.ndarray:
    """The array in ``.npy`` bytes, without pickle and without allocating from the header.

    The header's shape times the item size must equal the bytes after the header, so a header
    that declares terabytes over a few bytes is refused; the array is a view of ``raw``.
    """
    if bytes(raw[:6]) != b"\x93NUMPY" or len(raw) < 10:
        raise error(f"{what} is not a .npy array (bad magic bytes)")
    head = io.BytesIO(bytes(raw[: 12 + _MAX_NPY_HEADER]))
    try:
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(head, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(head, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]}, expected 1.0 or 2.0")
    except Exception as exc:  # noqa: BLE001
        # numpy parses the header (at most _MAX_NPY_HEADER bytes) with tokenize and
        # ast.literal_eval: besides ValueError and SyntaxError, a crafted one raises
        # tokenize.TokenError, RecursionError (deep parentheses), MemoryError, ... Whatever it
        # raises, the header is not one numpy wrote.
        raise error(f"{what} has a corrupt .npy header ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise PickleRequiredError(f"{what} holds Python objects (dtype {dtype}), which only pickle reads; never loaded")
    if dtype.itemsize == 0:
        raise error(f"{what} has dtype {dtype} of zero item size; expected a numeric or fixed-size dtype")
    offset = head.tell()
    count = math.prod(shape)
    declared, present = count * dtype.itemsize, len(raw) - offset
    if declared != present:
        raise error(f"{what} declares shape {tuple(shape)} of {dtype} ({declared} bytes) but holds {present} "
                    "bytes of data; expected them to match (a truncated or crafted .npy)")
    try:
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
        return array.reshape(shape[::-1]).transpose() if fortran_order else array.reshape(shape)
    except (ValueError, TypeError) as exc:  # e.g. a sub-array dtype, which numpy never writes
        raise error(f"{what} of dtype {dtype} and shape {tuple(shape)} cannot be read ({exc})") from None


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
