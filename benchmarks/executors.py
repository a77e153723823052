"""Where runs execute: a local pool (default) or a Ray cluster. Each run is its own process.

Both executors call ``execute_run`` with the run's spec as JSON text, which starts
``python -m benchmarks.runner`` in a fresh process and returns its result as JSON text. So a
run is the same program under either executor (only the scheduling differs), and results cross
process and machine boundaries as JSON, never as pickles.

Single-thread runs share the machine, ``workers`` at a time. Whole-machine runs use every core
and are timed as such, so each runs alone: after the single-thread runs, one at a time on the
local pool; on Ray, each asks for all the CPUs of a node, so no other task shares its node.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Iterable

from agents_zoo.core.temporary import owned_temporary_directory

from benchmarks.config import WHOLE_MACHINE

EXECUTORS = ("local", "ray")
STDERR_TAIL_CHARS = 4000

# on_done(spec_text, outcome): outcome is {"ok": True, "record": {...}} or {"ok": False, "error": "..."}.
OnDone = Callable[[str, dict], None]
# spec_text -> one of the run's folders (its checkpoints, its kept model), or None.
RunFolder = Callable[[str], "str | None"]


def _no_folder(spec_text: str) -> None:
    return None


def execute_run(spec_text: str, checkpoint_folder: str | None = None, model_folder: str | None = None) -> str:
    """Run one spec in a child process; return {"ok": ..., "record" | "error": ...} as JSON text.

    The child is this environment's Python, or the reference library's own virtualenv where it
    cannot share ours (imitation: ``benchmarks.reference_envs``). ``checkpoint_folder`` holds the
    run's in-run checkpoints: a run killed earlier continues from its last one. ``model_folder``,
    if given, receives the trained policy (``runner.keep_policy``).
    """
    from benchmarks import reference_envs

    python, extra_env = reference_envs.interpreter_for(json.loads(spec_text)["library"])
    with owned_temporary_directory("agents-zoo-bench-") as folder:
        spec_path, result_path = Path(folder, "spec.json"), Path(folder, "result.json")
        spec_path.write_text(spec_text, encoding="utf-8")
        arguments = [str(spec_path), str(result_path)] + ([checkpoint_folder] if checkpoint_folder else [])
        arguments += ["--model-folder", model_folder] if model_folder else []
        completed = subprocess.run([python, "-m", "benchmarks.runner", *arguments],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **extra_env, "PYTHONUNBUFFERED": "1"})
        if completed.returncode == 0 and result_path.is_file():
            return json.dumps({"ok": True, "record": json.loads(result_path.read_text(encoding="utf-8"))})
        return json.dumps({"ok": False, "returncode": completed.returncode,
                           "error": completed.stderr[-STDERR_TAIL_CHARS:]})


def run_local(spec_texts: Iterable[str], on_done: OnDone, workers: int,
              checkpoint_folder: RunFolder = _no_folder, model_folder: RunFolder = _no_folder) -> None:
    """A pool of ``workers`` threads, each waiting on one child process at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_run, text, checkpoint_folder(text), model_folder(text)): text
                   for text in spec_texts}
        try:
            for future in concurrent.futures.as_completed(futures):
                on_done(futures[future], json.loads(future.result()))
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def run_ray(spec_texts: Iterable[str], on_done: OnDone, workers: int, address: str | None,
            checkpoint_folder: RunFolder = _no_folder, exclusive_texts: Iterable[str] = (),
            model_folder: RunFolder = _no_folder) -> None:
    """Ray tasks of one CPU each; ``address=None`` starts a local instance with ``workers`` CPUs.

    ``exclusive_texts`` (whole-machine runs) go after the others, each a task that asks for all
    the CPUs of the largest node, so it has its node to itself. On a cluster every node needs
    this package installed (``pip install agents-zoo[bench,ray]``): the task runs
    ``python -m benchmarks.runner`` on whichever node Ray picks.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError("--executor ray needs Ray: pip install 'agents-zoo[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        node_cpus = max(int(node["Resources"].get("CPU", 1)) for node in ray.nodes() if node["Alive"])
        for texts, cpus in ((list(spec_texts), 1), (list(exclusive_texts), node_cpus)):
            remote_run = ray.remote(num_cpus=cpus, max_retries=0)(execute_run)
            # The checkpoint and model folders are paths on the node that runs the task (one machine: the same folders).
            pending = {remote_run.remote(text, checkpoint_folder(text), model_folder(text)): text for text in texts}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    text = pending.pop(ref)
                    try:
                        outcome = json.loads(ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        outcome = {"ok": False, "error": f"Ray task failed: {exc}"}
                    on_done(text, outcome)
    finally:
        if started_here:
            ray.shutdown()


def run_all(spec_texts: list[str], on_done: OnDone, *, executor: str = "local", workers: int = 1,
            address: str | None = None, checkpoint_folder: RunFolder = _no_folder,
            model_folder: RunFolder = _no_folder) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if address is not None and executor != "ray":
        raise ValueError(f"--address {address!r} is only used with --executor ray")
    shared, exclusive = split_exclusive(spec_texts)
    if executor == "local":
        for texts, pool_size in ((shared, workers), (exclusive, 1)):
            if texts:
                run_local(texts, on_done, pool_size, checkpoint_folder, model_folder)
    else:
        run_ray(shared, on_done, workers, address, checkpoint_folder, exclusive, model_folder)


def split_exclusive(spec_texts: list[str]) -> tuple[list[str], list[str]]:
    """(runs that share the machine, whole-machine runs that must each run alone), in the given order."""
    shared: list[str] = []
    exclusive: list[str] = []
    for text in spec_texts:
        (exclusive if json.loads(text).get("protocol") == WHOLE_MACHINE else shared).append(text)
    return shared, exclusive
