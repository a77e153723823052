"""Run a sweep: skip the runs already in the results, execute the rest, append each result.

Results live in ``<output>/runs.jsonl``, one JSON record per finished run, appended by this
(single) process with an atomic rewrite: a sweep killed at any moment leaves every finished
record intact, and re-running it skips them (key: algo, env, library, seed, budget,
hyperparameter hash). Failed runs go to ``failures.jsonl`` and are retried on the next sweep.
With ``models``, each run also keeps its trained policy in ``<models>/<run>/`` (``--models``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from agents_zoo.core.serialization import atomic_append_line, atomic_write_bytes
from agents_zoo.core.temporary import owned_temporary_directory

from benchmarks import executors, reference_envs
from benchmarks.config import WHOLE_MACHINE, RunSpec, SweepConfig, canonical_json

RESULTS_FILE = "runs.jsonl"
FAILURES_FILE = "failures.jsonl"
CHECKPOINTS_FOLDER = "checkpoints"
DEMONSTRATIONS_FOLDER = "demonstrations"


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


class SweepLockedError(RuntimeError):
    """Another sweep is writing to the same results folder."""


@contextlib.contextmanager
def exclusive_results_folder(output: Path) -> Iterator[None]:
    """Hold an advisory lock on ``output`` for the whole sweep.

    ``runs.jsonl`` is appended by rewriting it atomically, which is safe against kills but not
    against a second writer: two sweeps on one folder would each rewrite the file from their
    own read and drop the other's records. So a second sweep on a locked folder is refused.
    The lock dies with its process (flock), so a killed sweep never leaves the folder locked.
    """
    import fcntl

    lock_path = output / ".sweep.lock"
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SweepLockedError(f"another sweep ({holder}) is writing to {output}; wait for it to finish or "
                                   "pass another --output") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def run_folder_name(spec: RunSpec) -> str:
    """The folder name of a run's checkpoints and of its kept model: its label and hyperparameter hash."""
    return f"{spec.label.replace('/', '_')}__{spec.hyperparameter_hash}"


def run_sweep(config: SweepConfig, output: str | Path, *, executor: str = "local", workers: int = 1,
              address: str | None = None, log: Callable[[str], None] = print,
              models: str | Path | None = None) -> SweepOutcome:
    """Run what ``output`` has no record of; with ``models``, each trained run also keeps its policy
    in ``<models>/<run>/`` (the library's own files and ``spec.json``; ``runner.keep_policy``)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with exclusive_results_folder(output):
        return _run_sweep(config, output, executor, workers, address, log, None if models is None else Path(models))


def _run_sweep(config: SweepConfig, output: Path, executor: str, workers: int, address: str | None,
               log: Callable[[str], None], models: Path | None) -> SweepOutcome:
    results_path, failures_path = output / RESULTS_FILE, output / FAILURES_FILE
    done = finished_keys(load_records(results_path))
    outcome = SweepOutcome()
    pending: dict[str, RunSpec] = {}
    for spec in config.runs:
        if spec.key_text in done:
            outcome.skipped.append(spec)
        else:
            pending[json.dumps(spec.to_json(), sort_keys=True)] = spec
    exclusive = sum(spec.protocol == WHOLE_MACHINE for spec in pending.values())
    how = f"{executor}, {workers} worker(s), one thread per run"
    if exclusive:
        how += f"; {exclusive} whole-machine run(s) last, each alone on all cores"
    log(f"sweep {config.name!r}: {len(config.runs)} runs, {len(outcome.skipped)} already finished in "
        f"{results_path}, {len(pending)} to run ({how})")
    started = time.perf_counter()

    def checkpoint_folder(spec_text: str) -> str | None:
        spec = pending[spec_text]
        if not spec.checkpoint_every:
            return None
        return str(output / CHECKPOINTS_FOLDER / run_folder_name(spec))

    def model_folder(spec_text: str) -> str | None:
        spec = pending[spec_text]
        if models is None or spec.budget == 0:  # the random baseline trains nothing
            return None
        return str(models.absolute() / run_folder_name(spec))

    live_folders = set()
    for spec_text, spec in pending.items():
        folder = checkpoint_folder(spec_text)
        if folder is not None and Path(folder).is_dir():
            live_folders.add(Path(folder).name)
            log(f"  {spec.label} was interrupted: it continues from its last checkpoint in {folder}")
    if (output / CHECKPOINTS_FOLDER).is_dir():  # left by a kill between a record's append and its cleanup
        for stale in (output / CHECKPOINTS_FOLDER).iterdir():
            if stale.name not in live_folders:
                shutil.rmtree(stale, ignore_errors=True)

    def on_done(spec_text: str, result: dict[str, Any]) -> None:
        spec = pending[spec_text]
        if result.get("ok"):
            record = result["record"]
            if record.get("key") != spec.key:
                raise RuntimeError(f"run {spec.label} returned a record for another key: {record.get('key')}")
            atomic_append_line(results_path, json.dumps(record, sort_keys=True))
            folder = checkpoint_folder(spec_text)
            if folder is not None:  # the record holds everything now; checkpoints are never committed
                shutil.rmtree(folder, ignore_errors=True)
            outcome.finished.append(spec)
            final, timing = record["final"], record["timing"]
            speed = f", {timing['steps_per_second']:.0f} steps/s" if timing.get("steps_per_second") else ""
            if record.get("resumed_from_step"):
                speed += f", resumed from step {record['resumed_from_step']:,}"
            if model_folder(spec_text) is not None:
                speed += f"; model in {model_folder(spec_text)}"
            log(f"  done {spec.label}: return {final['mean']:.1f} +- {final['std']:.1f}{speed} "
                f"[{len(outcome.finished) + len(outcome.failed)}/{len(pending)}, {time.perf_counter() - started:.0f} s]")
        else:
            error = str(result.get("error", "unknown error")).strip()
            atomic_append_line(failures_path, json.dumps({"key": spec.key, "spec": spec.to_json(), "error": error,
                                                          "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, sort_keys=True))
            outcome.failed.append((spec, error))
            last_line = error.splitlines()[-1] if error else "no output"
            log(f"  FAILED {spec.label}: {last_line} (full error in {failures_path})")

    prepare_demonstrations(list(pending.values()), output, log)
    for library in sorted({spec.library for spec in pending.values()} & set(reference_envs.SEPARATE_ENVIRONMENTS)):
        reference_envs.ensure_environment(library, log)  # built here, on screen, before runs start
    if pending:
        executors.run_all(list(pending), on_done, executor=executor, workers=workers, address=address,
                          checkpoint_folder=checkpoint_folder, model_folder=model_folder)
    with contextlib.suppress(OSError):  # empty once every run has its record
        (output / CHECKPOINTS_FOLDER).rmdir()
    return outcome


def prepare_demonstrations(specs: list[RunSpec], output: Path, log: Callable[[str], None]) -> None:
    """Make each GAIL experiment's expert episodes once, before its runs start in parallel.

    The episodes are kept beside the results (``<output>/demonstrations/``, committed with them):
    expert training is seeded but not bitwise the same on another CPU, so a cache lost with a
    machine would otherwise give a later run of the sweep (imitation's, a new seed) a different
    expert from the one its finished runs imitated. A kept file is put back in the cache before
    any run starts, so every run of the sweep, in any environment, reads the same episodes.
    """
    from agents_zoo.demonstrations import load_demonstrations
    from benchmarks.runner import demonstrations_cache_path

    for spec in specs:
        if spec.demonstrations is None:
            continue
        path = demonstrations_cache_path(spec.env, spec.demonstrations)
        kept = output / DEMONSTRATIONS_FOLDER / path.name
        if kept.is_file():  # also every later spec of an experiment whose episodes were just made
            episodes = kept.read_bytes()
            if not (path.is_file() and path.read_bytes() == episodes):
                # A missing cache, or one holding another machine's retrained expert: the sweep's own wins.
                load_demonstrations(kept)  # validated before any run reads it
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, episodes)
                log(f"  expert demonstrations for {spec.env}: the sweep's own, from {kept}")
            continue
        if not path.is_file():
            _make_demonstrations(spec, path, log)
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(kept, path.read_bytes())


def _make_demonstrations(spec: RunSpec, path: Path, log: Callable[[str], None]) -> None:
    """Train the expert and record its episodes into the cache, in a process of its own."""
    log(f"  making expert demonstrations for {spec.env} ({spec.demonstrations['expert']}, "
        f"{spec.demonstrations['expert_timesteps']:,} steps, {spec.demonstrations['n_episodes']} episodes) -> {path}")
    with owned_temporary_directory("agents-zoo-demos-") as folder:
        spec_path = Path(folder, "spec.json")
        spec_path.write_text(json.dumps(spec.to_json()), encoding="utf-8")
        completed = subprocess.run([sys.executable, "-m", "benchmarks.runner", "--demonstrations", str(spec_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"making demonstrations for {spec.env} failed:\n{completed.stderr[-4000:]}")
