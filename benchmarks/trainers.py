"""Each library's side of a benchmark run: build the model from the run's spec, train it, report back.

``LIBRARY_TRAINERS[library](spec, checkpoints, log_folder)`` returns a ``TrainedRun``: the curve
recorder, the deterministic batch policy that the final evaluation plays, the steps trained, the
arguments the library was given (JSON-able, for the record) and how to save the trained policy
(``agents-zoo bench --models``). Ours, SB3 and imitation are
imported inside their trainer, after the runner has set the thread variables, and only the
library under test is imported. GAIL's expert episodes are made here too, once per
(env, settings) and cached, for both libraries.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, NamedTuple

from benchmarks.config import WHOLE_MACHINE
from benchmarks.machine import thread_count
from benchmarks.progress import CurveRecorder, RunCheckpoints, SB3Clock


# What a trainer reports beside its arguments; the runner moves it to the record's top level.
REPLAY_BYTES = "replay_bytes_per_transition"
# The file names of a run's saved model, in checkpoints and in kept models (``--models``).
OUR_MODEL_FILE = "agent.zip"
REFERENCE_MODEL_FILE = "model.zip"
VEC_NORMALIZE_FILE = "vecnormalize.pkl"


class TrainedRun(NamedTuple):
    recorder: CurveRecorder
    act: Callable[[Any], Any]
    """The deterministic batch policy the final evaluation plays."""
    num_timesteps: int
    arguments: dict[str, Any]
    save_policy: Callable[[Path], None] | None
    """Writes what acting needs into a folder, in the library's own format: the model and its
    observation statistics, no replay buffer, no discriminator (None: nothing was trained)."""


def sb3_replay_bytes_per_transition(buffer: Any) -> float | None:
    """SB3's replay memory per transition: its arrays (``next_observations`` is None with
    ``optimize_memory_usage``) over the transitions they hold; None without a replay buffer."""
    if buffer is None:
        return None
    arrays = [getattr(buffer, name, None) for name in ("observations", "next_observations", "actions", "rewards",
                                                       "dones", "timeouts")]
    # SB3's buffer_size attribute counts slots per env (arrays are buffer_size x n_envs)
    return sum(array.nbytes for array in arrays if array is not None) / (buffer.buffer_size * buffer.n_envs)


def quiet_sb3_logger() -> Any:
    """An SB3 logger with no outputs and no folder. Without one, ``learn`` configures SB3's
    default logger, which makes an empty ``<tmp>/SB3-<date>`` folder for every run."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def fastest_vector_env(env_id: str, n_envs: int, protocol: str) -> Any:
    """What our agent trains on: the env id (our synchronous vector env, core/envs.py), except in
    a whole-machine run on one of our Atari ids, where ale-py's C++ ``AtariVectorEnv`` steps the
    emulators on all cores (``backend="auto"``: where ale-py >= 0.12 is installed and takes the
    preset; its episode starts differ from the Python chain's, see wrappers/atari_presets.py)."""
    if protocol != WHOLE_MACHINE or not env_id.startswith("agents_zoo/"):
        return env_id
    from wrappers.atari_presets import make_atari_vector_env, resolve_game

    try:
        resolve_game(env_id)
    except ValueError:  # one of our ids that is not an Atari game
        return env_id
    return make_atari_vector_env(env_id, n_envs, backend="auto", num_threads=thread_count(protocol))


def train_ours(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> TrainedRun:
    """Our agent on its fastest vector env for the run's protocol (``fastest_vector_env``); a
    whole-machine run gives TF's pools all the cores."""
    import tensorflow as tf

    # Before any TF op, or TF refuses to change its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(thread_count(spec.protocol))
    tf.config.threading.set_inter_op_parallelism_threads(thread_count(spec.protocol))
    import agents_zoo
    from agents_zoo.core import callbacks

    from benchmarks import translate

    arguments = translate.to_ours(spec.algo, spec.hyperparameters)
    if spec.algo == "gail":
        arguments["demonstrations"] = run_demonstrations(spec)
    env_timed = spec.protocol != WHOLE_MACHINE
    if env_timed:
        from benchmarks.env_clock import EnvCpuClock

        make = translate.env_maker(spec.env, spec.env_kwargs, spec.env_wrapper)

        def env() -> Any:  # our agents take an env factory
            return EnvCpuClock(make())
    elif not spec.env_kwargs and spec.env_wrapper is None:
        env = fastest_vector_env(spec.env, arguments.get("n_envs", 1), spec.protocol)
    else:
        env = translate.env_maker(spec.env, spec.env_kwargs, spec.env_wrapper)
    resumed = checkpoints.latest() if spec.budget else None
    if resumed is None:
        agent = agents_zoo.make(spec.algo, env, seed=spec.seed, **arguments)
    else:
        agent = agents_zoo.get_agent_class(spec.algo).load(resumed[1] / OUR_MODEL_FILE, env=env)
        if spec.algo == "gail":
            agent.set_demonstrations(arguments["demonstrations"])

    def act(obs: Any) -> Any:
        return agent.predict(obs, deterministic=True)[0]

    def probe() -> dict[str, float]:
        learner = agent.learner if spec.algo == "gail" else agent
        found = exploration_std(learner.log_std() if hasattr(learner, "log_std") else None)
        return {**found, **discriminator_diagnostics(agent)} if spec.algo == "gail" else found

    recorder = CurveRecorder(spec, act, probe=probe, env_timed=env_timed)
    if spec.budget == 0:  # the random baseline: evaluated, never trained
        return TrainedRun(recorder, act, 0, arguments, None)

    class Curve(callbacks.BaseCallback):
        def on_step(self) -> bool:
            recorder.maybe_evaluate(self.num_timesteps)
            return True

    parts: list[Any] = [Curve()]
    if checkpoints.every:  # on-policy agents: between rollouts, the update done
        parts.append(checkpoints.callback(
            recorder, lambda folder: agent.save(folder / OUR_MODEL_FILE, include_replay_buffer=True)))
    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
        agent.learn(spec.budget, callback=parts)
    else:
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
        if spec.budget > agent.num_timesteps:
            agent.learn(spec.budget - agent.num_timesteps, callback=parts, reset_num_timesteps=False)
    described = {k: _describe(v) for k, v in arguments.items()}
    replay = getattr(agent, "replay", None)
    return TrainedRun(recorder, act, int(agent.num_timesteps), {
        **described, "vec_env": type(agent.env).__name__, "observation_shape": list(agent.observation_space.shape),
        REPLAY_BYTES: replay.bytes_per_transition if replay is not None else None},
        lambda folder: agent.save(folder / OUR_MODEL_FILE))


# SB3 logs train/std, the mean of exp(log_std), after each PPO/A2C update on Box actions (the
# gSDE weights' scale with use_sde). Kept at each evaluation for both libraries, it shows whether a
# run that levelled off stopped exploring.
EXPLORATION_STD = "train/std"


def exploration_std(log_std: Any) -> dict[str, float]:
    """SB3's ``train/std`` of a policy's ``log_std`` (a NumPy array, or a torch parameter); none
    for a policy without one (discrete actions, DQN's Q-network)."""
    import numpy as np

    if log_std is None:
        return {}
    values = log_std.detach().cpu().numpy() if hasattr(log_std, "detach") else np.asarray(log_std)
    return {EXPLORATION_STD: float(np.mean(np.exp(values)))}


# GAIL's per-round discriminator statistics (agents/gail.py logs them), kept at each evaluation.
DISCRIMINATOR_DIAGNOSTICS = ("disc/reward_mean", "disc/reward_expert", "disc/expert_acc", "disc/gen_acc")


def discriminator_diagnostics(agent: Any) -> dict[str, float]:
    """The last logged value of each of ``DISCRIMINATOR_DIAGNOSTICS`` (none before the first round)."""
    latest: dict[str, float] = {}
    for row in (agent.logger.values, *reversed(agent.logger.history)):  # the values not dumped yet first
        latest.update({name: row[name] for name in DISCRIMINATOR_DIAGNOSTICS if name in row and name not in latest})
        if len(latest) == len(DISCRIMINATOR_DIAGNOSTICS):
            break
    return latest




def sb3_act(model: Any, normalizer: Any) -> Callable[[Any], Any]:
    """The deterministic batch policy of an SB3 model (a reference run's, or imitation's generator)
    on raw observations, normalized first where the run has VecNormalize statistics."""

    def act(obs: Any) -> Any:
        if normalizer is not None:
            obs = normalizer.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    return act


def save_reference_policy(model: Any, normalizer: Any, folder: Path) -> None:
    """An SB3 model (a reference run's, or imitation's generator) as SB3 saves it, and the
    VecNormalize statistics its observations need, if any: ``model.zip``, ``vecnormalize.pkl``."""
    model.save(str(folder / REFERENCE_MODEL_FILE))
    if normalizer is not None:
        normalizer.save(str(folder / VEC_NORMALIZE_FILE))


def sb3_vec_normalize(venv: Any, settings: dict[str, Any], resumed: tuple[int, Path] | None) -> Any:
    """SB3's VecNormalize around ``venv`` where the run's ``normalize`` asks for it (None otherwise):
    a resumed run's saved statistics, else fresh ones that discount with the algorithm's gamma."""
    if not settings["normalize"]:
        return None
    from stable_baselines3.common.vec_env import VecNormalize

    if resumed is not None:
        return VecNormalize.load(str(resumed[1] / VEC_NORMALIZE_FILE), venv)
    return VecNormalize(venv, **settings["vec_normalize"])


def train_sb3(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> TrainedRun:
    import torch

    torch.set_num_threads(thread_count(spec.protocol))
    import stable_baselines3
    from stable_baselines3.common import vec_env
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from benchmarks import translate

    kwargs, settings = translate.to_sb3(spec.algo, spec.hyperparameters, spec.protocol)
    wrapper = translate.env_wrapper_class(spec.env_wrapper)
    # Single-thread: its envs step in this process (DummyVecEnv), timed as ours are.
    env_timed = spec.protocol != WHOLE_MACHINE
    if env_timed:
        from benchmarks.env_clock import EnvCpuClock

        inner = wrapper

        def wrapper(env: Any) -> Any:
            return EnvCpuClock(env if inner is None else inner(env))

    env = make_vec_env(spec.env, n_envs=settings["n_envs"], seed=spec.seed, env_kwargs=spec.env_kwargs,
                       vec_env_cls=getattr(vec_env, settings["vec_env"]), wrapper_class=wrapper)
    resumed = checkpoints.latest()
    normalizer = sb3_vec_normalize(env, settings, resumed)
    if normalizer is not None:
        env = normalizer
    algorithm_class = {"ppo": stable_baselines3.PPO, "a2c": stable_baselines3.A2C, "dqn": stable_baselines3.DQN}[spec.algo]
    policy = "CnnPolicy" if len(env.observation_space.shape) == 3 else "MlpPolicy"
    if resumed is None:
        model = algorithm_class(policy, env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    else:
        # SB3's own save and load (cloudpickle): files this run wrote into its own folder.
        model = algorithm_class.load(str(resumed[1] / REFERENCE_MODEL_FILE), env=env, device="cpu")
        if (resumed[1] / "replay.pkl").is_file():
            model.load_replay_buffer(str(resumed[1] / "replay.pkl"))
    model.set_logger(quiet_sb3_logger())

    act = sb3_act(model, normalizer)

    recorder = CurveRecorder(spec, act, probe=lambda: exploration_std(getattr(model.policy, "log_std", None)),
                             env_timed=env_timed)

    def save_policy(folder: Path) -> None:
        save_reference_policy(model, normalizer, folder)

    def save_model(folder: Path) -> None:
        save_policy(folder)
        if getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(str(folder / "replay.pkl"))

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
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, "policy": policy,
                 "observation_shape": list(model.observation_space.shape),
                 REPLAY_BYTES: sb3_replay_bytes_per_transition(getattr(model, "replay_buffer", None))}
    return TrainedRun(recorder, act, int(model.num_timesteps), described, save_policy)


def whole_budget_progress(algorithm_class: type, budget: int) -> type:
    """``algorithm_class`` with its schedules' progress counted over the run's whole ``budget``.

    imitation's GAIL calls the generator's ``learn(gen_train_timesteps, reset_num_timesteps=False)``
    once per round, and SB3 counts ``progress_remaining`` over each call: it reaches 0 at the end of
    every round's rollout, just before the update, so a ``lin_x`` learning rate or clip range would
    be 0 at every update. Ours anneals over the whole ``learn`` budget; this makes SB3 do the same.
    """

    class WholeBudgetProgress(algorithm_class):  # type: ignore[misc, valid-type]
        def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
            super()._update_current_progress_remaining(num_timesteps, budget)

    WholeBudgetProgress.__name__ = WholeBudgetProgress.__qualname__ = algorithm_class.__name__
    return WholeBudgetProgress


class RoundClock(SB3Clock):
    """imitation's GAIL, read by our checkpoint callback: the end of a round (the generator and the
    discriminator both updated) is a safe point, so a due checkpoint is written there and then."""

    checkpoint_between_rollouts_only = False


# What imitation's generator replay buffer holds that its discriminator reads (its ``infos`` are not).
GENERATOR_SAMPLE_FIELDS = ("obs", "acts", "next_obs", "dones")


def train_imitation(spec: Any, checkpoints: RunCheckpoints, log_folder: Path) -> TrainedRun:
    """imitation's GAIL with the settings ours runs, checkpointed at round ends so a cut run resumes.

    * ``normalize``: a VecNormalize (with the learner's gamma) wraps imitation's reward wrapper, so
      the generator learns from normalized observations and discriminator rewards while the
      discriminator sees raw observations, as the demonstrations are; ours is built the same way.
    * ``lin_x`` schedules anneal over the whole budget (``whole_budget_progress``).
    * A checkpoint holds the generator (SB3's save), the VecNormalize statistics, the reward net and
      its optimizer, the trainer's counters, the generator replay buffer and the RNG states. The
      envs restart their episodes on resume, as an SB3 run's do, and the expert batches start a
      fresh shuffle.
    """
    import numpy as np
    import torch

    torch.set_num_threads(thread_count(spec.protocol))
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imitation_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import A2C, PPO

    from benchmarks import translate

    kwargs, settings = translate.to_sb3("gail", spec.hyperparameters, spec.protocol)
    learner_class = whole_budget_progress({"ppo": PPO, "a2c": A2C}[settings["learner"]], spec.budget)
    rng = np.random.default_rng(spec.seed)
    env = make_vec_env(spec.env, rng=rng, n_envs=settings["n_envs"], env_make_kwargs=spec.env_kwargs or None,
                       parallel=settings["vec_env"] == "SubprocVecEnv")
    resumed = checkpoints.latest()
    if resumed is None:
        learner = learner_class("MlpPolicy", env, seed=spec.seed, device="cpu", verbose=0, **kwargs)
    else:
        learner = learner_class.load(str(resumed[1] / REFERENCE_MODEL_FILE), env=env, device="cpu")
    reward_net = BasicRewardNet(env.observation_space, env.action_space, normalize_input_layer=RunningNorm,
                                **settings["reward_net"])
    adversarial = {"demo_batch_size": 1024, "gen_replay_buffer_capacity": 512, "n_disc_updates_per_round": 8,
                   "allow_variable_horizon": False, **settings["gail"]}
    from agents_zoo.demonstrations import to_trajectories

    # imitation's own logger needs a folder (it writes per-round means below it): the run's, with no outputs.
    quiet = imitation_logger.configure(folder=log_folder / "imitation", format_strs=[])
    trainer = GAIL(demonstrations=to_trajectories(run_demonstrations(spec)), venv=env, gen_algo=learner, reward_net=reward_net,
                   custom_logger=quiet, **adversarial)
    normalizer = sb3_vec_normalize(trainer.venv_train, settings, resumed)
    if normalizer is not None:
        trainer.venv_train = normalizer
        learner.set_env(normalizer)
    samples = trainer._gen_replay_buffer._buffer  # imitation has no public access to its replay buffer

    act = sb3_act(learner, normalizer)

    def save_policy(folder: Path) -> None:
        save_reference_policy(learner, normalizer, folder)

    def save_model(folder: Path) -> None:
        save_policy(folder)
        torch.save({"reward_net": reward_net.state_dict(), "disc_optimizer": trainer._disc_opt.state_dict(),
                    "torch_rng": torch.get_rng_state()}, folder / "adversarial.pt")
        numpy_rng = np.random.get_state()
        np.savez(folder / "adversarial.npz", counters=np.array([trainer._global_step, trainer._disc_step,
                                                                samples._idx, samples._n_data]),
                 numpy_rng_keys=numpy_rng[1], numpy_rng_rest=np.array(numpy_rng[2:]),
                 **{f"samples_{name}": samples._arrays[name] for name in GENERATOR_SAMPLE_FIELDS})

    recorder = CurveRecorder(spec, act)
    if resumed is None:
        recorder.start()
        recorder.maybe_evaluate(0)
    else:
        state = torch.load(resumed[1] / "adversarial.pt")
        reward_net.load_state_dict(state["reward_net"])
        trainer._disc_opt.load_state_dict(state["disc_optimizer"])
        torch.set_rng_state(state["torch_rng"])
        with np.load(resumed[1] / "adversarial.npz") as arrays:
            trainer._global_step, trainer._disc_step, samples._idx, samples._n_data = (
                int(v) for v in arrays["counters"])
            for name in GENERATOR_SAMPLE_FIELDS:
                samples._arrays[name][...] = arrays[f"samples_{name}"]
            rest = arrays["numpy_rng_rest"]
            np.random.set_state(("MT19937", arrays["numpy_rng_keys"], int(rest[0]), int(rest[1]), float(rest[2])))
        recorder.resume(RunCheckpoints.curve_state(resumed[1]))
    checkpoint = checkpoints.callback(recorder, save_model) if checkpoints.every else None
    if checkpoint is not None:
        checkpoint.init_callback(RoundClock(learner))
        checkpoint.on_training_start(0)

    def end_of_round(round_number: int) -> None:
        recorder.maybe_evaluate(learner.num_timesteps)
        if checkpoint is not None:
            checkpoint.on_step()

    # imitation trains in rounds of gen_train_timesteps and calls back once per round; a resumed run
    # plays the rounds the whole budget has left.
    rounds_left = spec.budget // trainer.gen_train_timesteps - learner.num_timesteps // trainer.gen_train_timesteps
    if rounds_left > 0:
        trainer.train(rounds_left * trainer.gen_train_timesteps, callback=end_of_round)
    described = {**{k: _describe(v) for k, v in kwargs.items()}, **settings, **adversarial,
                 "reward_net": {k: _describe(v) for k, v in settings["reward_net"].items()}}
    env.close()  # as for SB3
    return TrainedRun(recorder, act, int(learner.num_timesteps), described, save_policy)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    # Our PPO expert checkpoints beside the cache entry (same digest: same settings), so a sweep
    # cut during a long expert run continues it; the file goes once the episodes are cached.
    checkpoint = path.with_suffix(".expert.zip") if settings["expert"] == "ppo" else None
    expert = demonstrations.train_expert(env_id, settings["expert"], settings["expert_timesteps"], settings["seed"],
                                         dict(settings["expert_hyperparameters"]), checkpoint_path=checkpoint)
    episodes = demonstrations.rollout(expert, env_id, settings["n_episodes"], seed=settings["seed"])
    demonstrations.save_demonstrations(path, episodes)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return episodes


def run_demonstrations(spec: Any) -> Any:
    if spec.demonstrations is None:
        raise ValueError(f"GAIL run {spec.label} has no demonstrations settings")
    return ensure_demonstrations(spec.env, spec.demonstrations)


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
