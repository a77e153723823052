"""One benchmark run, in a process of its own: ``python -m benchmarks.runner SPEC.json RESULT.json``.

The parent (the local pool or a Ray task) writes the run's spec as JSON and reads the result
record back as JSON; nothing crosses the process boundary as a pickle. Both libraries run here
under the same rules:

- the run's protocol (``benchmarks.config.PROTOCOLS``) sets the threads: OMP/MKL variables and
  TF's intra/inter-op pools are set before TF or torch is imported, and ``torch.set_num_threads``,
  to 1 (single-thread) or to the machine's cores (whole-machine, where SB3 and imitation also
  step their envs in a ``SubprocVecEnv`` and ours in its own vector env, the synchronous one);
  only the library under test is imported, so neither side's peak memory carries the other
  framework;
- the same env id, seed and evaluation protocol (``evaluate_policy`` below, shared by both);
- training time excludes evaluation: the curve callback stops the clock while it evaluates;
- whatever a library logs goes nowhere or into the run's own temporary folder (the folder of
  RESULT.json, which the executor removes), never into ``/tmp/SB3-<date>`` folders of their own.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import signal
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from benchmarks.config import WHOLE_MACHINE

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
RECORD_SCHEMA = 1
# Fields that legitimately differ between two runs of the same spec (machine load, scheduling).
NONDETERMINISTIC_FIELDS = ("timing", "machine")


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_count(protocol: str) -> int:
    """Threads of every pool of a run: one, or all the machine's cores for a whole-machine run."""
    return machine_cores() if protocol == WHOLE_MACHINE else 1


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
    # children import this module under that name before they import SB3 for the worker.
    keep_tensorflow_out()


def quiet_sb3_logger() -> Any:
    """An SB3 logger with no outputs and no folder. Without one, ``learn`` configures SB3's
    default logger, which makes an empty ``<tmp>/SB3-<date>`` folder for every run."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


# ----------------------------------------------------------------------------- evaluation
def evaluate_policy(act: Callable[[Any], Any], env_id: str, env_kwargs: dict[str, Any], n_episodes: int,
                    seed: int) -> tuple[list[float], list[int]]:
    """Undiscounted returns of ``n_episodes`` full episodes of deterministic ``act`` (a batch policy).

    The same function evaluates both libraries, so the env construction, seeding and the way
    episodes are spread over envs (up front, so short episodes do not dominate; SB3 #402) match.
    ``BaseAgent.evaluate`` does the same for our agents only, and ``demonstrations.rollout`` keeps
    every observation; neither fits a library-neutral evaluation with ``env_kwargs``.
    """
    import gymnasium as gym
    import numpy as np

    from agents_zoo.core.envs import sync_vector_env

    n_envs = min(n_episodes, 8)
    env = sync_vector_env([lambda: gym.make(env_id, **env_kwargs) for _ in range(n_envs)])
    targets = np.array([(n_episodes + i) // n_envs for i in range(n_envs)])
    counts = np.zeros(n_envs, dtype=np.int64)
    running, lengths = np.zeros(n_envs), np.zeros(n_envs, dtype=np.int64)
    returns: list[float] = []
    episode_lengths: list[int] = []
    # A seed far from the training seeds, so evaluation episodes are not the training ones.
    obs, _ = env.reset(seed=seed + 1_000_003)
    try:
        while (counts < targets).any():
            obs, rewards, terminated, truncated, _ = env.step(act(obs))
            running += rewards
            lengths += 1
            for i in np.flatnonzero(np.logical_or(terminated, truncated)):
                if counts[i] < targets[i]:
                    returns.append(float(running[i]))
                    episode_lengths.append(int(lengths[i]))
                    counts[i] += 1
                running[i], lengths[i] = 0.0, 0
    finally:
        env.close()
    return returns, episode_lengths


class CurveRecorder:
    """Periodic evaluation for either library; keeps evaluation time out of the training clock."""

    def __init__(self, spec: Any, act: Callable[[Any], Any]):
        self.spec = spec
        self.act = act
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

    def start(self) -> None:
        self.train_start = time.perf_counter()
        self.train_cpu_start = time.process_time()

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue this curve and its clocks (JSON)."""
        return {"steps": self.steps, "actual_steps": self.actual_steps, "means": self.means, "stds": self.stds,
                "train_times": self.train_times, "next_step": self.next_step, "train_time": self.train_time(),
                "train_cpu_time": self.train_cpu_time(), "eval_time": self.eval_time,
                "eval_cpu_time": self.eval_cpu_time}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the clocks restart with the training time spent before the kill."""
        for name in ("steps", "actual_steps", "means", "stds", "train_times"):
            setattr(self, name, list(state[name]))
        self.next_step = int(state["next_step"])
        self.eval_time, self.eval_cpu_time = float(state["eval_time"]), float(state["eval_cpu_time"])
        self.start()
        # train_time() = now - start - eval_time, so shifting start carries the earlier training time.
        self.train_start -= float(state["train_time"]) + self.eval_time
        self.train_cpu_start -= float(state["train_cpu_time"]) + self.eval_cpu_time

    def train_time(self) -> float:
        return time.perf_counter() - self.train_start - self.eval_time

    def train_cpu_time(self) -> float:
        """CPU seconds of this process spent training: the figure that a loaded machine does not inflate."""
        return time.process_time() - self.train_cpu_start - self.eval_cpu_time

    def maybe_evaluate(self, num_timesteps: int) -> None:
        if num_timesteps < self.next_step:
            return
        import numpy as np

        began, began_cpu = time.perf_counter(), time.process_time()
        self.train_times.append(self.train_time())
        returns, _ = evaluate_policy(self.act, self.spec.env, self.spec.env_kwargs,
                                     self.spec.evaluation.n_eval_episodes, self.spec.seed)
        self.steps.append(self.next_step)
        self.actual_steps.append(int(num_timesteps))
        self.means.append(float(np.mean(returns)))
        self.stds.append(float(np.std(returns)))
        self.next_step += self.every
        self.eval_time += time.perf_counter() - began
        self.eval_cpu_time += time.process_time() - began_cpu


# ----------------------------------------------------------------------------- in-run checkpoints
class RunCheckpoints:
    """A run's checkpoints: ``step-<N>/`` folders in the run's checkpoint folder, each complete.

    A checkpoint is written into a hidden temporary folder and renamed into place (atomic on
    POSIX), then older ones are removed, so a kill at any moment leaves the last complete one.
    Each holds the library's own save of the model (ours: our archive with the replay buffer and
    env state; SB3: its zip, replay buffer and VecNormalize statistics) and ``curve.json``, the
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
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".step-{step}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        save_model(temporary)
        (temporary / "curve.json").write_text(json.dumps(curve_state), encoding="utf-8")
        final = self.folder / f"step-{step}"
        shutil.rmtree(final, ignore_errors=True)
        os.rename(temporary, final)
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


# ----------------------------------------------------------------------------- the libraries
def train_ours(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    """Our agent on its own vector env: agents-zoo offers only the synchronous one (core/envs.py),
    under either protocol; a whole-machine run gives TF's pools all the cores."""
    import tensorflow as tf

    # Before any TF op, or TF refuses to change its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(thread_count(spec.protocol))
    tf.config.threading.set_inter_op_parallelism_threads(thread_count(spec.protocol))
    import agents_zoo
    from agents_zoo.core import callbacks

    from benchmarks import translate

    arguments = translate.to_ours(spec.algo, spec.hyperparameters)
    if spec.algo == "gail":
        arguments["demonstrations"] = _demonstrations(spec)
    env = spec.env if not spec.env_kwargs else _env_factory(spec)
    resumed = checkpoints.latest() if spec.budget else None
    if resumed is None:
        agent = agents_zoo.make(spec.algo, env, seed=spec.seed, **arguments)
    else:
        agent = agents_zoo.get_agent_class(spec.algo).load(resumed[1] / "agent.zip", env=env)
        if spec.algo == "gail":
            agent.set_demonstrations(arguments["demonstrations"])

    def act(obs: Any) -> Any:
        return agent.predict(obs, deterministic=True)[0]

    recorder = CurveRecorder(spec, act)
    if spec.budget == 0:  # the random baseline: evaluated, never trained
        return recorder, act, 0, arguments

    class Curve(callbacks.BaseCallback):
        def on_step(self) -> bool:
            recorder.maybe_evaluate(self.num_timesteps)
            return True

    parts: list[Any] = [Curve()]
    if checkpoints.every:  # on-policy agents: between rollouts, the update done
        parts.append(checkpoints.callback(
            recorder, lambda folder: agent.save(folder / "agent.zip", include_replay_buffer=True)))
    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
        agent.learn(spec.budget, callback=parts)
    else:
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
        if spec.budget > agent.num_timesteps:
            agent.learn(spec.budget - agent.num_timesteps, callback=parts, reset_num_timesteps=False)
    described = {k: _describe(v) for k, v in arguments.items()}
    return recorder, act, int(agent.num_timesteps), {**described, "vec_env": type(agent.env).__name__}


def train_sb3(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    import torch

    torch.set_num_threads(thread_count(spec.protocol))
    import stable_baselines3
    from stable_baselines3.common import vec_env
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from benchmarks import translate

    kwargs, settings = translate.to_sb3(spec.algo, spec.hyperparameters, spec.protocol)
    env = make_vec_env(spec.env, n_envs=settings["n_envs"], seed=spec.seed, env_kwargs=spec.env_kwargs,
                       vec_env_cls=getattr(vec_env, settings["vec_env"]))
    resumed = checkpoints.latest()
    normalizer = None
    if settings["normalize"]:
        if resumed is not None:
            env = normalizer = VecNormalize.load(str(resumed[1] / "vecnormalize.pkl"), env)
        else:
            env = normalizer = VecNormalize(env)
    algorithm_class = {"ppo": stable_baselines3.PPO, "a2c": stable_baselines3.A2C, "dqn": stable_baselines3.DQN}[spec.algo]
    policy = "CnnPolicy" if len(env.observation_space.shape) == 3 else "MlpPolicy"
    if resumed is None:
        model = algorithm_class(policy, env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    else:
        # SB3's own save and load (cloudpickle): files this run wrote into its own folder.
        model = algorithm_class.load(str(resumed[1] / "model.zip"), env=env, device="cpu")
        if (resumed[1] / "replay.pkl").is_file():
            model.load_replay_buffer(str(resumed[1] / "replay.pkl"))
    model.set_logger(quiet_sb3_logger())

    def act(obs: Any) -> Any:
        if normalizer is not None:
            obs = normalizer.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    recorder = CurveRecorder(spec, act)

    def save_model(folder: Path) -> None:
        model.save(str(folder / "model.zip"))
        if getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(str(folder / "replay.pkl"))
        if normalizer is not None:
            normalizer.save(str(folder / "vecnormalize.pkl"))

    checkpoint = checkpoints.callback(recorder, save_model) if checkpoints.every else None

    class Curve(BaseCallback):
        """Evaluates on schedule; our checkpoint callback, driven by SB3's events, checkpoints at
        the start of the next rollout (the update done)."""

        def _on_training_start(self) -> None:
            if checkpoint is not None:
                checkpoint.init_callback(SB3Clock(self.model))
                checkpoint.on_training_start(0)

        def _on_step(self) -> bool:
            recorder.maybe_evaluate(self.num_timesteps)
            if checkpoint is not None:
                checkpoint.on_step()
            return True

        def _on_rollout_start(self) -> None:
            if checkpoint is not None:
                checkpoint.on_rollout_start()

    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
        model.learn(spec.budget, callback=Curve())
    else:
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
        if spec.budget > model.num_timesteps:
            model.learn(spec.budget - model.num_timesteps, callback=Curve(), reset_num_timesteps=False)
    env.close()  # a SubprocVecEnv's workers; the final evaluation builds its own envs
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, "policy": policy}
    return recorder, act, int(model.num_timesteps), described


def train_imitation(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    """imitation's GAIL trainer has no save of its whole state: its runs restart from step 0."""
    import numpy as np
    import torch

    torch.set_num_threads(thread_count(spec.protocol))
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imitation_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    from benchmarks import translate

    kwargs, settings = translate.to_sb3("gail", spec.hyperparameters, spec.protocol)
    rng = np.random.default_rng(spec.seed)
    env = make_vec_env(spec.env, rng=rng, n_envs=settings["n_envs"], env_make_kwargs=spec.env_kwargs or None,
                       parallel=settings["vec_env"] == "SubprocVecEnv")
    learner = PPO("MlpPolicy", env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    reward_net = BasicRewardNet(env.observation_space, env.action_space, normalize_input_layer=RunningNorm)
    adversarial = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512, "n_disc_updates_per_round": 8,
                   **{k: v for k, v in settings["gail"].items() if k in translate.GAIL_ADVERSARIAL}}
    from agents_zoo.demonstrations import to_trajectories

    # imitation's own logger needs a folder (it writes per-round means below it): the run's, with no outputs.
    quiet = imitation_logger.configure(folder=log_folder / "imitation", format_strs=[])
    trainer = GAIL(demonstrations=to_trajectories(_demonstrations(spec)), venv=env, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=False, custom_logger=quiet, **adversarial)

    def act(obs: Any) -> Any:
        return learner.predict(obs, deterministic=True)[0]

    recorder = CurveRecorder(spec, act)
    recorder.start()
    recorder.maybe_evaluate(0)
    # imitation trains in rounds of gen_train_timesteps; its callback runs once per round.
    trainer.train(spec.budget, callback=lambda round_number: recorder.maybe_evaluate(learner.num_timesteps))
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, **adversarial}
    env.close()  # as for SB3
    return recorder, act, int(learner.num_timesteps), described


def demonstrations_cache_path(env_id: str, settings: dict[str, Any]) -> Path:
    """Where the expert episodes for (env, settings) are kept; the same for every run and both libraries."""
    import hashlib

    from benchmarks.config import canonical_json

    digest = hashlib.sha256(canonical_json({"env": env_id, **settings}).encode()).hexdigest()[:16]
    root = Path(os.environ.get("AGENTS_ZOO_CACHE", Path.home() / ".cache" / "agents-zoo"))
    return root / "demonstrations" / f"{env_id.replace('/', '_')}__{digest}.npz"


def ensure_demonstrations(env_id: str, settings: dict[str, Any]) -> Any:
    """Load the cached expert episodes, or train the expert, roll it out and cache them (atomically).

    The sweep makes them once before its GAIL runs start; a run that finds none (a fresh Ray
    node) makes the same ones, since expert training and rollout are seeded.
    """
    from agents_zoo import demonstrations

    path = demonstrations_cache_path(env_id, settings)
    if path.is_file():
        return demonstrations.load_demonstrations(path)
    expert = demonstrations.train_expert(env_id, settings["expert"], settings["expert_timesteps"], settings["seed"],
                                         dict(settings["expert_hyperparameters"]))
    episodes = demonstrations.rollout(expert, env_id, settings["n_episodes"], seed=settings["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    demonstrations.save_demonstrations(path, episodes)
    return episodes


def _demonstrations(spec: Any) -> Any:
    if spec.demonstrations is None:
        raise ValueError(f"GAIL run {spec.label} has no demonstrations settings")
    return ensure_demonstrations(spec.env, spec.demonstrations)


def _env_factory(spec: Any) -> Callable[[], Any]:
    import gymnasium as gym

    return lambda: gym.make(spec.env, **spec.env_kwargs)


def _describe(value: Any) -> Any:
    """JSON-able description of a constructor argument (schedules and classes by name)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


LIBRARY_TRAINERS = {"ours": train_ours, "sb3": train_sb3, "imitation": train_imitation}
LIBRARY_DISTRIBUTIONS = {"ours": ("agents-zoo", "tensorflow", "keras"),
                         "sb3": ("stable-baselines3", "torch"),
                         "imitation": ("imitation", "stable-baselines3", "torch")}


def library_versions(library: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "gymnasium", *LIBRARY_DISTRIBUTIONS[library]):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


# ----------------------------------------------------------------------------- one run
def run_spec(spec: Any, threads: dict[str, Any], checkpoint_folder: str | None = None,
             log_folder: str | Path | None = None) -> dict[str, Any]:
    """Train and evaluate one run; ``log_folder`` takes what a library insists on logging (default:
    a ``logs`` folder in the current directory)."""
    started = time.perf_counter()
    checkpoints = RunCheckpoints(checkpoint_folder, spec.checkpoint_every)
    resumed = checkpoints.latest() if spec.library != "imitation" else None
    from agents_zoo.core.envs import check_env_id

    check_env_id(spec.env)  # seals/... ids register when their package is imported
    log_folder = Path(log_folder if log_folder is not None else "logs")
    recorder, act, num_timesteps, arguments = LIBRARY_TRAINERS[spec.library](spec, checkpoints, log_folder)
    train_time = recorder.train_time() if spec.budget else 0.0
    train_cpu_time = recorder.train_cpu_time() if spec.budget else 0.0
    final_began = time.perf_counter()
    returns, lengths = evaluate_policy(act, spec.env, spec.env_kwargs, spec.evaluation.n_final_episodes, spec.seed)
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
        "num_timesteps": num_timesteps,
        "resumed_from_step": None if resumed is None else resumed[0],
        # Imitation runs: the expert's mean return, so reports give the fraction of expert return.
        "expert_return": (float(_demonstrations(spec).episode_returns.mean())
                          if spec.demonstrations is not None else None),
        "curve": {"steps": recorder.steps, "actual_steps": recorder.actual_steps,
                  "mean": recorder.means, "std": recorder.stds},
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
                                     if train_cpu_time > 0 and spec.protocol != WHOLE_MACHINE else None),
            "process_cpu_time_s": time.process_time(),
            "curve_train_time_s": recorder.train_times,
            "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        },
        "machine": {"host": socket.gethostname(), "pid": os.getpid(), "cpu_count": os.cpu_count(),
                    "cores": machine_cores(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print("usage: python -m benchmarks.runner SPEC.json RESULT.json [CHECKPOINT_FOLDER]\n"
              "       python -m benchmarks.runner --demonstrations SPEC.json", file=sys.stderr)
        return 2
    _die_with_parent()
    from benchmarks.config import RunSpec  # imports nothing that reads the thread variables

    demonstrations_only = argv[0] == "--demonstrations"
    spec_path = Path(argv[1] if demonstrations_only else argv[0])
    spec = RunSpec.from_json(json.loads(spec_path.read_text(encoding="utf-8")))
    threads = set_thread_variables(1 if demonstrations_only else thread_count(spec.protocol))
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
    record = run_spec(spec, threads, argv[2] if len(argv) == 3 else None, log_folder)
    atomic_write_text(argv[1], json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
