"""What a benchmark run keeps while it trains: its evaluations, its learning curve and clocks, its checkpoints.

Both libraries' trainers (:mod:`benchmarks.trainers`) use these, so the evaluation protocol
(:func:`evaluate_policy`), the curve and the split of training from evaluation time, and the
checkpoints a killed run resumes from are the same for ours and the reference.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

EVALUATION_SEED_OFFSET = 1_000_003
"""Added to a run's seed for its evaluation episodes, so they are not the training episodes."""


# ----------------------------------------------------------------------------- evaluation
def evaluate_policy(act: Callable[[Any], Any], env_id: str, env_kwargs: dict[str, Any], n_episodes: int,
                    seed: int, env_wrapper: str | None = None) -> tuple[list[float], list[int]]:
    """Undiscounted returns and lengths of ``n_episodes`` full episodes of deterministic ``act`` (a batch policy).

    The same function evaluates both libraries, so the env construction, seeding and the way
    episodes are spread over envs (up front, so short episodes do not dominate; SB3 #402) match.
    The episodes are played by ``agents_zoo.core.episodes.run_episodes``, the loop of
    ``BaseAgent.evaluate`` and ``demonstrations.rollout`` too; here on envs made with ``env_kwargs``
    and the experiment's ``env_wrapper`` (``benchmarks.translate.env_maker``), and the run's
    evaluation seed.
    """
    from agents_zoo.core.envs import sync_vector_env
    from agents_zoo.core.episodes import run_episodes

    from benchmarks.translate import env_maker

    n_envs = min(n_episodes, 8)
    env = sync_vector_env([env_maker(env_id, env_kwargs, env_wrapper)] * n_envs)
    try:
        # A seed far from the training seeds, so evaluation episodes are not the training ones.
        episodes = run_episodes(env, act, n_episodes, seed=seed + EVALUATION_SEED_OFFSET)
    finally:
        env.close()
    return [episode.episode_return for episode in episodes], [episode.length for episode in episodes]


# CPU seconds this process has spent in its training envs' step and reset: the count that
# ``benchmarks.env_clock.EnvCpuClock`` keeps (that module imports gymnasium; this one must not).
ENV_CPU_SECONDS = [0.0]


def env_cpu_seconds() -> float:
    return ENV_CPU_SECONDS[0]


class CurveRecorder:
    """Periodic evaluation for either library; keeps evaluation time out of the training clock.

    ``probe``, where given, returns training diagnostics (name -> value) at each evaluation,
    kept beside the curve in ``diagnostics`` (a value a probe lacks is None, so every list has one
    entry per evaluation); GAIL's discriminator rewards are drawn from them (report.py).
    """

    def __init__(self, spec: Any, act: Callable[[Any], Any], probe: Callable[[], dict[str, float]] | None = None,
                 env_timed: bool = False):
        self.spec = spec
        self.act = act
        self.probe = probe
        self.diagnostics: dict[str, list[float | None]] = {}
        self.every = spec.evaluation.eval_every
        self.next_step = 0
        self.steps: list[int] = []
        self.actual_steps: list[int] = []
        self.means: list[float] = []
        self.stds: list[float] = []
        self.train_times: list[float] = []
        self.eval_time = 0.0
        self.eval_cpu_time = 0.0
        self.train_start = 0.0
        self.train_cpu_start = 0.0
        # Env CPU seconds before this process's clock started (a resumed run's); None: not measured.
        self.env_cpu_carried: float | None = 0.0 if env_timed else None
        self.env_cpu_start = 0.0

    def start(self) -> None:
        self.train_start = time.perf_counter()
        self.train_cpu_start = time.process_time()
        self.env_cpu_start = env_cpu_seconds()

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue this curve and its clocks (JSON)."""
        return {"steps": self.steps, "actual_steps": self.actual_steps, "means": self.means, "stds": self.stds,
                "train_times": self.train_times, "next_step": self.next_step, "train_time": self.train_time(),
                "train_cpu_time": self.train_cpu_time(), "eval_time": self.eval_time,
                "eval_cpu_time": self.eval_cpu_time, "diagnostics": self.diagnostics,
                "env_cpu_time": self.env_cpu_time()}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the clocks restart with the training time spent before the kill."""
        for name in ("steps", "actual_steps", "means", "stds", "train_times"):
            setattr(self, name, list(state[name]))
        self.next_step = int(state["next_step"])
        self.diagnostics = {name: list(values) for name, values in state.get("diagnostics", {}).items()}
        self.eval_time, self.eval_cpu_time = float(state["eval_time"]), float(state["eval_cpu_time"])
        self.start()
        # train_time() = now - start - eval_time, so shifting start carries the earlier training time.
        self.train_start -= float(state["train_time"]) + self.eval_time
        self.train_cpu_start -= float(state["train_cpu_time"]) + self.eval_cpu_time
        carried = state.get("env_cpu_time")  # absent from checkpoints older than the env clock
        if self.env_cpu_carried is not None:
            self.env_cpu_carried = None if carried is None else float(carried)

    def train_time(self) -> float:
        return time.perf_counter() - self.train_start - self.eval_time

    def train_cpu_time(self) -> float:
        """CPU seconds of this process spent training: the figure that a loaded machine does not inflate."""
        return time.process_time() - self.train_cpu_start - self.eval_cpu_time

    def env_cpu_time(self) -> float | None:
        """CPU seconds the training envs took in this run (evaluation envs are not timed); None
        if its envs were not wrapped in ``EnvCpuClock``, in all or part of the run."""
        if self.env_cpu_carried is None:
            return None
        return self.env_cpu_carried + env_cpu_seconds() - self.env_cpu_start

    def maybe_evaluate(self, num_timesteps: int) -> None:
        if num_timesteps < self.next_step:
            return
        import numpy as np

        began, began_cpu = time.perf_counter(), time.process_time()
        self.train_times.append(self.train_time())
        returns, _ = evaluate_policy(self.act, self.spec.env, self.spec.env_kwargs,
                                     self.spec.evaluation.n_eval_episodes, self.spec.seed, self.spec.env_wrapper)
        self.steps.append(self.next_step)
        self.actual_steps.append(int(num_timesteps))
        self.means.append(float(np.mean(returns)))
        self.stds.append(float(np.std(returns)))
        if self.probe is not None:
            self._record_diagnostics(self.probe())
        self.next_step += self.every
        self.eval_time += time.perf_counter() - began
        self.eval_cpu_time += time.process_time() - began_cpu

    def _record_diagnostics(self, values: dict[str, float]) -> None:
        evaluations = len(self.steps)
        for name in values.keys() - self.diagnostics.keys():  # a name first seen now: None before it
            self.diagnostics[name] = [None] * (evaluations - 1)
        for name, series in self.diagnostics.items():
            value = values.get(name)
            series.append(None if value is None else float(value))


# ----------------------------------------------------------------------------- in-run checkpoints
def write_folder(final: Path, fill: Callable[[Path], None]) -> None:
    """Make ``final`` a folder that ``fill`` wrote, all at once: ``fill`` writes into a hidden
    temporary sibling that is then renamed into place (atomic on POSIX), so a kill at any moment
    leaves either the complete new folder or whatever was there before (replaced only at the rename)."""
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    fill(temporary)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(temporary, final)


class RunCheckpoints:
    """A run's checkpoints: ``step-<N>/`` folders in the run's checkpoint folder, each complete.

    A checkpoint is written into a hidden temporary folder and renamed into place (atomic on
    POSIX), then older ones are removed, so a kill at any moment leaves the last complete one.
    Each holds the library's own save of the model (ours: our archive with the replay buffer and
    env state; SB3: its zip, replay buffer and VecNormalize statistics; imitation: its generator's
    zip and the adversarial state, ``trainers.train_imitation``) and ``curve.json``, the
    learning curve and clocks up to that step.
    """

    def __init__(self, folder: str | Path | None, every: int | None):
        self.folder = Path(folder) if folder else None
        self.every = every if self.folder is not None else None

    def latest(self) -> tuple[int, Path] | None:
        if self.folder is None or not self.folder.is_dir():
            return None
        steps = [(int(p.name[5:]), p) for p in self.folder.iterdir()
                 if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
        return max(steps) if steps else None

    def write(self, step: int, save_model: Callable[[Path], None], curve_state: dict[str, Any]) -> None:
        import shutil

        assert self.folder is not None

        def fill(folder: Path) -> None:
            save_model(folder)
            (folder / "curve.json").write_text(json.dumps(curve_state), encoding="utf-8")

        final = self.folder / f"step-{step}"
        write_folder(final, fill)
        for path in self.folder.iterdir():
            if path != final and (path.name.startswith("step-") or path.name.startswith(".step-")):
                shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def curve_state(folder: Path) -> dict[str, Any]:
        return json.loads((folder / "curve.json").read_text(encoding="utf-8"))

    def callback(self, recorder: CurveRecorder, save_model: Callable[[Path], None]) -> Any:
        """Our ``EveryNSteps`` callback that writes a checkpoint every ``every`` env steps, once the
        update of the rollout under way is done. It schedules both libraries' checkpoints: an SB3
        model drives it through ``SB3Clock`` (``agents_zoo.core.callbacks`` imports no TF)."""
        from agents_zoo.core.callbacks import EveryNSteps

        checkpoints = self

        class Checkpoint(EveryNSteps):
            def _on_event(self) -> None:
                checkpoints.write(self.num_timesteps, save_model, recorder.state())

        return Checkpoint(self.every, "checkpoint_every", between_rollouts=True)


class SB3Clock:
    """What our callbacks read from their agent, for an SB3 model: its step count, and that a
    checkpoint waits for the next rollout (SB3's update follows the rollout it collected)."""

    checkpoint_between_rollouts_only = True

    def __init__(self, model: Any):
        self.model = model

    @property
    def num_timesteps(self) -> int:
        return self.model.num_timesteps
