"""Run a sweep: skip the runs already in the results, execute the rest, append each result.

Results live in ``<output>/runs.jsonl``, one JSON record per finished run, appended by this
(single) process with an atomic rewrite: a sweep killed at any moment leaves every finished
record intact, and re-running it skips them (key: algo, env, library, seed, budget,
hyperparameter hash). Failed runs go to ``failures.jsonl`` and are retried on the next sweep.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agents_zoo.core.serialization import atomic_append_line

from benchmarks import executors
from benchmarks.config import RunSpec, SweepConfig, canonical_json

RESULTS_FILE = "runs.jsonl"
FAILURES_FILE = "failures.jsonl"


@dataclass
class SweepOutcome:
    skipped: list[RunSpec] = field(default_factory=list)
    finished: list[RunSpec] = field(default_factory=list)
    failed: list[tuple[RunSpec, str]] = field(default_factory=list)


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a results file (JSON lines). A line that is not a JSON record is skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.warn(f"{path}:{number} is not valid JSON and is ignored ({exc})", stacklevel=2)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("key"), dict):
            warnings.warn(f"{path}:{number} is not a benchmark record (no 'key' object) and is ignored", stacklevel=2)
            continue
        records.append(record)
    return records


def finished_keys(records: list[dict[str, Any]]) -> set[str]:
    return {canonical_json(record["key"]) for record in records}


def run_sweep(config: SweepConfig, output: str | Path, *, executor: str = "local", workers: int = 1,
              address: str | None = None, log: Callable[[str], None] = print) -> SweepOutcome:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results_path, failures_path = output / RESULTS_FILE, output / FAILURES_FILE
    done = finished_keys(load_records(results_path))
    outcome = SweepOutcome()
    pending: dict[str, RunSpec] = {}
    for spec in config.runs:
        if spec.key_text in done:
            outcome.skipped.append(spec)
        else:
            pending[json.dumps(spec.to_json(), sort_keys=True)] = spec
    log(f"sweep {config.name!r}: {len(config.runs)} runs, {len(outcome.skipped)} already finished in "
        f"{results_path}, {len(pending)} to run ({executor}, {workers} worker(s), one thread per run)")
    started = time.perf_counter()

    def on_done(spec_text: str, result: dict[str, Any]) -> None:
        spec = pending[spec_text]
        if result.get("ok"):
            record = result["record"]
            if record.get("key") != spec.key:
                raise RuntimeError(f"run {spec.label} returned a record for another key: {record.get('key')}")
            atomic_append_line(results_path, json.dumps(record, sort_keys=True))
            outcome.finished.append(spec)
            final, timing = record["final"], record["timing"]
            speed = f", {timing['steps_per_second']:.0f} steps/s" if timing.get("steps_per_second") else ""
            log(f"  done {spec.label}: return {final['mean']:.1f} +- {final['std']:.1f}{speed} "
                f"[{len(outcome.finished) + len(outcome.failed)}/{len(pending)}, {time.perf_counter() - started:.0f} s]")
        else:
            error = str(result.get("error", "unknown error")).strip()
            atomic_append_line(failures_path, json.dumps({"key": spec.key, "spec": spec.to_json(), "error": error,
                                                          "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, sort_keys=True))
            outcome.failed.append((spec, error))
            last_line = error.splitlines()[-1] if error else "no output"
            log(f"  FAILED {spec.label}: {last_line} (full error in {failures_path})")

    prepare_demonstrations(list(pending.values()), log)
    if pending:
        executors.run_all(list(pending), on_done, executor=executor, workers=workers, address=address)
    return outcome


def prepare_demonstrations(specs: list[RunSpec], log: Callable[[str], None]) -> None:
    """Make each GAIL experiment's expert episodes once, before its runs start in parallel."""
    from benchmarks.runner import demonstrations_cache_path

    made: set[str] = set()
    for spec in specs:
        if spec.demonstrations is None:
            continue
        path = demonstrations_cache_path(spec.env, spec.demonstrations)
        if path.is_file() or str(path) in made:
            continue
        log(f"  making expert demonstrations for {spec.env} ({spec.demonstrations['expert']}, "
            f"{spec.demonstrations['expert_timesteps']:,} steps, {spec.demonstrations['n_episodes']} episodes) -> {path}")
        with tempfile.TemporaryDirectory(prefix="agents-zoo-demos-") as folder:
            spec_path = Path(folder, "spec.json")
            spec_path.write_text(json.dumps(spec.to_json()), encoding="utf-8")
            completed = subprocess.run([sys.executable, "-m", "benchmarks.runner", "--demonstrations", str(spec_path)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"making demonstrations for {spec.env} failed:\n{completed.stderr[-4000:]}")
        made.add(str(path))
