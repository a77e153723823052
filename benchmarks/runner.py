"""One benchmark run, in a process of its own: ``python -m benchmarks.runner SPEC.json RESULT.json``.

The parent (the local pool or a Ray task) writes the run's spec as JSON and reads the result
record back as JSON; nothing crosses the process boundary as a pickle. Both libraries run here
under the same rules:

- one thread: OMP/MKL variables and TF's intra/inter-op pools are set to 1 before TF or torch
  is imported, and ``torch.set_num_threads(1)``; only the library under test is imported, so
  neither side's peak memory carries the other framework;
- the same env id, seed and evaluation protocol (``evaluate_policy`` below, shared by both);
- training time excludes evaluation: the curve callback stops the clock while it evaluates.
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

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
RECORD_SCHEMA = 1
# Fields that legitimately differ between two runs of the same spec (machine load, scheduling).
NONDETERMINISTIC_FIELDS = ("timing", "machine")


def pin_to_one_thread() -> dict[str, Any]:
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
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


# ----------------------------------------------------------------------------- the libraries
def train_ours(spec: Any, checkpoints: RunCheckpoints) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    import tensorflow as tf

    # Before any TF op, or TF refuses to change its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
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

    class Checkpoint(callbacks.EveryNSteps):  # on-policy agents: between rollouts, the update done
        def _on_event(self) -> None:
            checkpoints.write(agent.num_timesteps,
                              lambda folder: agent.save(folder / "agent.zip", include_replay_buffer=True),
                              recorder.state())

    parts: list[Any] = [Curve()]
    if checkpoints.every:
        parts.append(Checkpoint(checkpoints.every, "checkpoint_every", between_rollouts=True))
    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
        agent.learn(spec.budget, callback=parts)
    else:
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
        if spec.budget > agent.num_timesteps:
            agent.learn(spec.budget - agent.num_timesteps, callback=parts, reset_num_timesteps=False)
    return recorder, act, int(agent.num_timesteps), {k: _describe(v) for k, v in arguments.items()}


def train_sb3(spec: Any, checkpoints: RunCheckpoints) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    import stable_baselines3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from benchmarks import translate

    kwargs, settings = translate.to_sb3(spec.algo, spec.hyperparameters)
    env = make_vec_env(spec.env, n_envs=settings["n_envs"], seed=spec.seed, env_kwargs=spec.env_kwargs)
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

    class Curve(BaseCallback):
        """Evaluates on schedule; checkpoints at the start of the next rollout (the update done)."""

        next_checkpoint = 0
        pending = False

        def _on_training_start(self) -> None:
            if checkpoints.every:
                self.next_checkpoint = (self.num_timesteps // checkpoints.every + 1) * checkpoints.every

        def _on_step(self) -> bool:
            recorder.maybe_evaluate(self.num_timesteps)
            if checkpoints.every and self.num_timesteps >= self.next_checkpoint:
                self.pending = True
                self.next_checkpoint = (self.num_timesteps // checkpoints.every + 1) * checkpoints.every
            return True

        def _on_rollout_start(self) -> None:
            if self.pending:
                self.pending = False
                checkpoints.write(self.num_timesteps, save_model, recorder.state())

    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
        model.learn(spec.budget, callback=Curve())
    else:
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
        if spec.budget > model.num_timesteps:
            model.learn(spec.budget - model.num_timesteps, callback=Curve(), reset_num_timesteps=False)
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, "policy": policy}
    return recorder, act, int(model.num_timesteps), described


def train_imitation(spec: Any, checkpoints: RunCheckpoints) -> tuple[CurveRecorder, Callable, int, dict[str, Any]]:
    """imitation's GAIL trainer has no save of its whole state: its runs restart from step 0."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    from benchmarks import translate

    kwargs, settings = translate.to_sb3("gail", spec.hyperparameters)
    rng = np.random.default_rng(spec.seed)
    env = make_vec_env(spec.env, rng=rng, n_envs=settings["n_envs"], env_make_kwargs=spec.env_kwargs or None)
    learner = PPO("MlpPolicy", env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    reward_net = BasicRewardNet(env.observation_space, env.action_space, normalize_input_layer=RunningNorm)
    adversarial = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512, "n_disc_updates_per_round": 8,
                   **{k: v for k, v in settings["gail"].items() if k in translate.GAIL_ADVERSARIAL}}
    from agents_zoo.demonstrations import to_trajectories

    trainer = GAIL(demonstrations=to_trajectories(_demonstrations(spec)), venv=env, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=False, **adversarial)

    def act(obs: Any) -> Any:
        return learner.predict(obs, deterministic=True)[0]

    recorder = CurveRecorder(spec, act)
    recorder.start()
    recorder.maybe_evaluate(0)
    # imitation trains in rounds of gen_train_timesteps; its callback runs once per round.
    trainer.train(spec.budget, callback=lambda round_number: recorder.maybe_evaluate(learner.num_timesteps))
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, **adversarial}
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
def run_spec(spec: Any, threads: dict[str, Any], checkpoint_folder: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    checkpoints = RunCheckpoints(checkpoint_folder, spec.checkpoint_every)
    resumed = checkpoints.latest() if spec.library != "imitation" else None
    from agents_zoo.core.envs import check_env_id

    check_env_id(spec.env)  # seals/... ids register when their package is imported
    recorder, act, num_timesteps, arguments = LIBRARY_TRAINERS[spec.library](spec, checkpoints)
    train_time = recorder.train_time() if spec.budget else 0.0
    train_cpu_time = recorder.train_cpu_time() if spec.budget else 0.0
    final_began = time.perf_counter()
    returns, lengths = evaluate_policy(act, spec.env, spec.env_kwargs, spec.evaluation.n_final_episodes, spec.seed)
    final_eval_time = time.perf_counter() - final_began
    import numpy as np

    threads = {**threads, "tf_intra_op": 1 if spec.library == "ours" else None,
               "tf_inter_op": 1 if spec.library == "ours" else None,
               "torch_threads": 1 if spec.library != "ours" else None}
    return {
        "schema": RECORD_SCHEMA,
        "key": spec.key,
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
            "cpu_steps_per_second": num_timesteps / train_cpu_time if train_cpu_time > 0 else None,
            "process_cpu_time_s": time.process_time(),
            "curve_train_time_s": recorder.train_times,
            "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        },
        "machine": {"host": socket.gethostname(), "pid": os.getpid(), "cpu_count": os.cpu_count(),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print("usage: python -m benchmarks.runner SPEC.json RESULT.json [CHECKPOINT_FOLDER]\n"
              "       python -m benchmarks.runner --demonstrations SPEC.json", file=sys.stderr)
        return 2
    _die_with_parent()
    threads = pin_to_one_thread()
    if argv[0] == "--demonstrations":
        import torch

        torch.set_num_threads(1)
        from benchmarks.config import RunSpec

        spec = RunSpec.from_json(json.loads(Path(argv[1]).read_text(encoding="utf-8")))
        ensure_demonstrations(spec.env, spec.demonstrations)
        return 0
    # Imports after the thread variables, so TF and torch start with one-thread pools.
    from agents_zoo.core.serialization import atomic_write_text

    from benchmarks.config import RunSpec

    spec = RunSpec.from_json(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    if spec.library != "ours":
        keep_tensorflow_out()
    record = run_spec(spec, threads, argv[2] if len(argv) == 3 else None)
    atomic_write_text(argv[1], json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
