"""Argument types shared by every ``agents-zoo`` subcommand (train, expert, generative, bench)."""

from __future__ import annotations

import argparse
import json
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
