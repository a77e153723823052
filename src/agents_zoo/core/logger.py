"""Logging under stable names (``rollout/ep_rew_mean``, ``train/policy_loss``, ``time/fps``)
to stdout, CSV and TensorBoard."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, TextIO


class Logger:
    """Collects scalars with ``record`` and writes them on ``dump(step)``.

    ``formats`` is a subset of {"stdout", "csv", "tensorboard"}; files go under ``folder``.
    """

    def __init__(self, folder: str | Path | None = None, formats: tuple[str, ...] = ("stdout",),
                 stream: TextIO | None = None):
        unknown = set(formats) - {"stdout", "csv", "tensorboard"}
        if unknown:
            raise ValueError(f"unknown log formats {sorted(unknown)}; expected stdout, csv, tensorboard")
        if ("csv" in formats or "tensorboard" in formats) and folder is None:
            raise ValueError(f"log formats {formats} write files and need a folder")
        self.folder = Path(folder) if folder is not None else None
        self.formats = formats
        self.stream = stream or sys.stdout
        self.values: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self._csv_file = None
        self._csv_writer: csv.DictWriter | None = None
        self._csv_keys: list[str] = []
        self._tb_writer = None

    def record(self, key: str, value: Any) -> None:
        self.values[key] = float(value)

    def dump(self, step: int) -> dict[str, float]:
        if not self.values:
            return {}
        values = {**self.values, "time/total_timesteps": float(step)}
        self.history.append(values)
        if "stdout" in self.formats:
            self._write_stdout(values)
        if "csv" in self.formats:
            self._write_csv(values)
        if "tensorboard" in self.formats:
            self._write_tensorboard(values, step)
        self.values = {}
        return values

    def _write_stdout(self, values: dict[str, float]) -> None:
        width = max(len(k) for k in values)
        lines = [f"| {k:<{width}} | {v:>12.5g} |" for k, v in sorted(values.items())]
        rule = "-" * len(lines[0])
        self.stream.write("\n".join([rule, *lines, rule]) + "\n")
        self.stream.flush()

    def _write_csv(self, values: dict[str, float]) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "progress.csv"
        new_keys = [k for k in values if k not in self._csv_keys]
        if self._csv_writer is None or new_keys:
            # A new column: rewrite the header and the rows so far (appending is cheaper, but a
            # CSV whose header misses columns is unreadable).
            self._csv_keys = sorted(set(self._csv_keys) | set(values))
            if self._csv_file is not None:
                self._csv_file.close()
            self._csv_file = open(path, "w", newline="")
            self._csv_writer = csv.DictWriter(self._csv_file, fieldnames=self._csv_keys, restval="")
            self._csv_writer.writeheader()
            for row in self.history[:-1]:
                self._csv_writer.writerow(row)
        self._csv_writer.writerow(values)
        self._csv_file.flush()

    def _write_tensorboard(self, values: dict[str, float], step: int) -> None:
        import tensorflow as tf

        if self._tb_writer is None:
            assert self.folder is not None
            self._tb_writer = tf.summary.create_file_writer(str(self.folder))
        with self._tb_writer.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(key, value)
        self._tb_writer.flush()

    def close(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
        if self._tb_writer is not None:
            self._tb_writer.close()
            self._tb_writer = None
