"""One benchmark run, in a process of its own: ``python -m benchmarks.runner SPEC.json RESULT.json``
(optionally a checkpoint folder after them, and ``--model-folder DIR`` to keep the trained policy).

The parent (the local pool or a Ray task) writes the run's spec as JSON and reads the result
record back as JSON; nothing crosses the process boundary as a pickle. Both libraries run here
under the same rules:

- the run's protocol (``benchmarks.config.PROTOCOLS``) sets the threads: OMP/MKL variables and
  TF's intra/inter-op pools are set before TF or torch is imported, and ``torch.set_num_threads``,
  to 1 (single-thread) or to the machine's cores (whole-machine, where SB3 and imitation also
  step their envs in a ``SubprocVecEnv``, and ours in ale-py's ``AtariVectorEnv`` on our Atari
  ids and in its synchronous vector env elsewhere: ``trainers.fastest_vector_env``);
  only the library under test is imported, so neither side's peak memory carries the other
  framework;
- the same env id, seed and evaluation protocol (``benchmarks.progress.evaluate_policy``, shared by both);
- training time excludes evaluation: the curve callback stops the clock while it evaluates;
- whatever a library logs goes nowhere or into the run's own temporary folder (the folder of
  RESULT.json, which the executor removes), never into ``/tmp/SB3-<date>`` folders of their own.

This module is the process: thread settings, the run record and ``main``. Each library's
trainer is in :mod:`benchmarks.trainers`, the curve, evaluation and checkpoints it keeps in
:mod:`benchmarks.progress`, the machine description in :mod:`benchmarks.machine`.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.config import THREAD_VARIABLES, WHOLE_MACHINE
# The runner's parts, importable from here as before the split: the machine and its threads,
# what a run records while it trains, and each library's trainer.
from benchmarks.machine import describe_machine, machine_cores, thread_count  # noqa: F401
from benchmarks.progress import (  # noqa: F401
    EVALUATION_SEED_OFFSET,
    CurveRecorder,
    RunCheckpoints,
    SB3Clock,
    evaluate_policy,
    write_folder,
)
from benchmarks.trainers import (  # noqa: F401
    LIBRARY_DISTRIBUTIONS,
    LIBRARY_TRAINERS,
    REPLAY_BYTES,
    TrainedRun,
    demonstrations_cache_path,
    ensure_demonstrations,
    library_versions,
    quiet_sb3_logger,
    run_demonstrations,
    train_imitation,
    train_ours,
    train_sb3,
)

RECORD_SCHEMA = 1
# Fields that legitimately differ between two runs of the same spec (machine load, scheduling).
NONDETERMINISTIC_FIELDS = ("timing", "machine")


def set_thread_variables(threads: int) -> dict[str, Any]:
    """Set the thread variables that NumPy's BLAS, TF and torch read when they are imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return {name: os.environ[name] for name in THREAD_VARIABLES}


def _die_with_parent() -> None:
    """If the sweep process is killed (even by SIGKILL) its runs stop too, instead of running on orphaned."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def keep_tensorflow_out() -> None:
    """SB3's logger imports torch.utils.tensorboard, which imports TensorFlow when it is installed
    (as it is here, for our agents): about 450 MiB and seconds of start-up that the reference run
    would not pay elsewhere. Marking it unimportable makes tensorboard use its own TF stub."""
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]


if __name__ == "__mp_main__":
    # A SubprocVecEnv worker of a whole-machine SB3 or imitation run: forkserver and spawn
    # children import this module under that name before they import SB3 for the worker. The
    # worker makes its env by id, so our ids (agents_zoo/Pong-dqn-v0) must be registered there
    # too: importing wrappers registers them (no TensorFlow).
    keep_tensorflow_out()
    import wrappers  # noqa: F401


# ----------------------------------------------------------------------------- one run
def run_spec(spec: Any, threads: dict[str, Any], checkpoint_folder: str | None = None,
             log_folder: str | Path | None = None, model_folder: str | None = None) -> dict[str, Any]:
    """Train and evaluate one run; ``log_folder`` takes what a library insists on logging (default:
    a ``logs`` folder in the current directory). With ``model_folder``, the trained policy is kept
    there (``keep_policy``) before the final evaluation."""
    started = time.perf_counter()
    checkpoints = RunCheckpoints(checkpoint_folder, spec.checkpoint_every)
    resumed = checkpoints.latest()
    from agents_zoo.core.envs import check_env_id

    check_env_id(spec.env)  # seals/... ids register when their package is imported
    log_folder = Path(log_folder if log_folder is not None else "logs")
    trained: TrainedRun = LIBRARY_TRAINERS[spec.library](spec, checkpoints, log_folder)
    recorder, act, num_timesteps, arguments = trained[:4]
    if model_folder is not None and trained.save_policy is not None:
        keep_policy(spec, trained.save_policy, Path(model_folder))
    replay_bytes = arguments.pop(REPLAY_BYTES, None)  # a measurement, not an argument
    train_time = recorder.train_time() if spec.budget else 0.0
    train_cpu_time = recorder.train_cpu_time() if spec.budget else 0.0
    env_cpu_time = recorder.env_cpu_time() if spec.budget else None
    single_thread = spec.protocol != WHOLE_MACHINE
    final_began = time.perf_counter()
    returns, lengths = evaluate_policy(act, spec.env, spec.env_kwargs, spec.evaluation.n_final_episodes, spec.seed,
                                       spec.env_wrapper)
    final_eval_time = time.perf_counter() - final_began
    import numpy as np

    count = thread_count(spec.protocol)
    threads = {**threads, "tf_intra_op": count if spec.library == "ours" else None,
               "tf_inter_op": count if spec.library == "ours" else None,
               "torch_threads": count if spec.library != "ours" else None}
    return {
        "schema": RECORD_SCHEMA,
        "key": spec.key,
        "protocol": spec.protocol,
        "spec": spec.to_json(),
        "library_arguments": arguments,
        "replay_bytes_per_transition": replay_bytes,
        "num_timesteps": num_timesteps,
        "resumed_from_step": None if resumed is None else resumed[0],
        # Imitation runs: the expert's mean return, so reports give the fraction of expert return.
        "expert_return": (float(run_demonstrations(spec).episode_returns.mean())
                          if spec.demonstrations is not None else None),
        "curve": {"steps": recorder.steps, "actual_steps": recorder.actual_steps,
                  "mean": recorder.means, "std": recorder.stds, "diagnostics": recorder.diagnostics},
        "final": {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": returns,
                  "lengths": lengths},
        "versions": library_versions(spec.library),
        "threads": threads,
        "timing": {
            "wall_time_s": time.perf_counter() - started,
            "train_time_s": train_time,
            "curve_eval_time_s": recorder.eval_time,
            "final_eval_time_s": final_eval_time,
            "steps_per_second": num_timesteps / train_time if train_time > 0 else None,
            "train_cpu_time_s": train_cpu_time,
            # CPU time is this process's: a whole-machine run also spends it in env worker processes
            # (SubprocVecEnv), so its steps per CPU second would flatter it; only wall clock counts there.
            "cpu_steps_per_second": (num_timesteps / train_cpu_time
                                     if train_cpu_time > 0 and single_thread else None),
            # The training envs' own step and reset CPU time (both libraries' envs are timed the same
            # way, benchmarks.env_clock.EnvCpuClock), and the steps per CPU second of everything else: the learner.
            "env_cpu_time_s": env_cpu_time,
            # (only single-thread runs time their envs: env_cpu_time is None in the others)
            "learner_cpu_steps_per_second": (num_timesteps / (train_cpu_time - env_cpu_time)
                                             if env_cpu_time is not None and train_cpu_time > env_cpu_time else None),
            "process_cpu_time_s": time.process_time(),
            "curve_train_time_s": recorder.train_times,
            "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        },
        "machine": describe_machine(),
    }


SPEC_FILE = "spec.json"


def keep_policy(spec: Any, save_policy: Callable[[Path], None], folder: Path) -> None:
    """The trained policy in the library's own format, and the run's spec (``spec.json``: the env
    id, its kwargs and wrapper, the hyperparameters), written into ``folder`` all at once."""

    def fill(temporary: Path) -> None:
        save_policy(temporary)
        (temporary / SPEC_FILE).write_text(json.dumps(spec.to_json(), indent=1, sort_keys=True), encoding="utf-8")

    write_folder(folder, fill)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    model_folder = None
    if "--model-folder" in argv[:-1]:
        at = argv.index("--model-folder")
        model_folder = argv.pop(at + 1)
        argv.pop(at)
    if len(argv) not in (2, 3) or "--model-folder" in argv:
        print("usage: python -m benchmarks.runner SPEC.json RESULT.json [CHECKPOINT_FOLDER] [--model-folder DIR]\n"
              "       python -m benchmarks.runner --demonstrations SPEC.json", file=sys.stderr)
        return 2
    _die_with_parent()
    from benchmarks.config import RunSpec  # imports nothing that reads the thread variables

    demonstrations_only = argv[0] == "--demonstrations"
    spec_path = Path(argv[1] if demonstrations_only else argv[0])
    spec = RunSpec.from_json(json.loads(spec_path.read_text(encoding="utf-8")))
    threads = set_thread_variables(1 if demonstrations_only else thread_count(spec.protocol))
    os.environ.update(spec.environment or {})  # before TF loads: it reads switches such as oneDNN's once
    # Expert trainers (and anything else) that configure SB3's default logger get a folder in
    # the temporary folder the parent made for this process, not one in /tmp.
    log_folder = (spec_path if demonstrations_only else Path(argv[1])).absolute().parent / "logs"
    os.environ["SB3_LOGDIR"] = str(log_folder / "sb3")
    if demonstrations_only:
        import torch

        torch.set_num_threads(1)
        ensure_demonstrations(spec.env, spec.demonstrations)
        return 0
    # Imports after the thread variables, so TF and torch start with pools of the protocol's size.
    from agents_zoo.core.serialization import atomic_write_text

    if spec.library != "ours":
        keep_tensorflow_out()
    record = run_spec(spec, threads, argv[2] if len(argv) == 3 else None, log_folder, model_folder)
    atomic_write_text(argv[1], json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
