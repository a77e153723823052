"""Argument types shared by every ``agents-zoo`` subcommand (train, expert, generative, bench)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int, got {text!r}")
    return value


def json_or_word(key: str, text: str) -> Any:
    """``3e-4`` -> 0.0003, ``[64,64]`` -> [64, 64], ``relu`` -> 'relu' (a bare word stays a string)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_key_values(pairs: Sequence[str], parse_value: Callable[[str, str], Any] = json_or_word) -> dict[str, Any]:
    """``--config key=value ...`` into a dict; ``parse_value(key, text)`` types each value."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config expects KEY=VALUE, got {pair!r}")
        values[key] = parse_value(key, text)
    return values


# Less free space than this at the destination is refused before any work: the files written
# at the end (models, checkpoints, datasets) need room, and a full disk found after hours of
# training would lose them.
MIN_FREE_BYTES = 64 * 1024 * 1024


def check_output_path(path: "os.PathLike[str] | str", what: str, *, folder: bool = False) -> Path:
    """Check before any work that ``path`` can be written: one ``ValueError`` line if not.

    The parent folders are created; a parent that is a file, a destination that is a folder
    (for a file) or a file (for a folder), a read-only or (nearly) full filesystem are refused.
    """
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a file, expected a folder (or a new path)")
        target_folder = path
    else:
        if path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a folder, expected a file path such as {str(path / 'model.zip')!r}")
        target_folder = path.parent
    for parent in [target_folder, *target_folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {str(path)!r} cannot be written: {str(parent)!r} is a file, not a folder")
            break
    try:
        target_folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target_folder, prefix=".agents-zoo-write-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    free = shutil.disk_usage(target_folder).free
    if free < MIN_FREE_BYTES:
        raise ValueError(f"{what} {str(path)!r}: only {free / 2**20:.1f} MiB free on its filesystem, "
                         f"expected at least {MIN_FREE_BYTES / 2**20:.0f} MiB")
    return path
