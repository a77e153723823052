"""One config, two libraries: translate benchmark hyperparameters into each library's arguments.

Config hyperparameters use SB3's names (our agents use the same ones). The table below is the
whole mapping; ``mapping_table_markdown()`` prints it (``agents-zoo bench --show-mapping``).
A name outside the table is rejected for the reference library with the closest known name,
and for ours by our agent's own config class (which names the closest field).

An experiment's ``env_wrapper`` (``ENV_WRAPPERS``) names one wrapper class that wraps every env of
both libraries' runs, training and evaluation alike, so both see the same observations.

Schedules: ``"lin_<start>"`` is RL-Zoo's linear schedule from ``start`` at the beginning of
training to 0 at the end (SB3's ``progress_remaining * start``). It becomes a Python callable
for SB3 and, for ours, ``<key>=start`` with ``<key>_schedule="linear"`` (our agents' spelling,
agents/onpolicy.py).
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

# (config name, ours, SB3 / imitation, note). "ours" is always the same name: our agents take SB3's names.
SHARED_ROWS = [
    ("n_envs", "n_envs", "make_vec_env(n_envs=...)", "same env id, one sync vector env each side"),
    ("policy_hidden_sizes", "policy_hidden_sizes", "policy_kwargs.net_arch", "list of hidden sizes, separate actor/critic"),
    ("activation", "activation", "policy_kwargs.activation_fn", "tanh -> nn.Tanh, relu -> nn.ReLU, elu -> nn.ELU, gelu -> nn.GELU"),
    ("learning_rate", "learning_rate (+ learning_rate_schedule)", "learning_rate",
     "\"lin_<x>\" -> linear x -> 0: SB3 callable / ours `learning_rate_schedule=\"linear\"`"),
    ("clip_range (ppo)", "clip_range (+ clip_range_schedule)", "clip_range", "same as learning_rate"),
    ("gamma", "gamma", "gamma", ""),
    ("max_grad_norm", "max_grad_norm", "max_grad_norm", ""),
    ("normalize", "normalize_observation + normalize_reward", "VecNormalize(norm_obs, norm_reward, gamma=gamma)",
     "RL-Zoo's normalize: true; the returns that scale rewards are discounted with the algorithm's gamma"),
]
# Keyword arguments passed straight to the SB3 constructor under the same name.
SB3_DIRECT = {
    "ppo": ("n_steps", "batch_size", "n_epochs", "gae_lambda", "clip_range", "clip_range_vf", "normalize_advantage",
            "ent_coef", "vf_coef", "use_sde", "sde_sample_freq", "target_kl"),
    "a2c": ("n_steps", "gae_lambda", "ent_coef", "vf_coef", "rms_prop_eps", "use_rms_prop", "use_sde",
            "sde_sample_freq", "normalize_advantage"),
    "dqn": ("buffer_size", "learning_starts", "batch_size", "tau", "train_freq", "gradient_steps",
            "target_update_interval", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps"),
}
SB3_POLICY_KWARGS = ("log_std_init", "ortho_init", "full_std", "use_expln", "squash_output")
# Ours' A2C flag for TF 1's RMSprop; SB3 takes it as an optimizer class (RL-Zoo's Atari A2C spelling).
SB3_OPTIMIZER_KEYS = {"a2c": ("rms_prop_tf_like",)}
# imitation's GAIL: these go to GAIL(...) itself (allow_variable_horizon under the same name).
GAIL_ADVERSARIAL = ("demo_batch_size", "gen_replay_buffer_capacity", "n_disc_updates_per_round", "allow_variable_horizon")
# GAIL's generator, as ours composes it: ``learner`` names the SB3 class (gen_algo), whose settings
# are the learner_kwargs and the flat keys of that algorithm; the discriminator's hidden layers and
# activation go to imitation's BasicRewardNet (hid_sizes, activation).
GAIL_LEARNERS = ("ppo", "a2c")
GAIL_OWN = ("learner", "learner_kwargs", "disc_hidden_sizes", "disc_activation")
SCHEDULE_KEYS = ("learning_rate", "clip_range")
SHARED_KEYS = ("n_envs", "policy_hidden_sizes", "activation", "learning_rate", "gamma", "max_grad_norm", "normalize")
ACTIVATIONS = ("tanh", "relu", "elu", "gelu")
# Experiment-level env wrappers: config name -> (module, class). One class serves both libraries
# (ours equals sb3-contrib's TimeFeatureWrapper, the one RL-Zoo's PyBullet settings named).
ENV_WRAPPERS = {"time_feature": ("wrappers.time_feature", "TimeFeatureWrapper")}
# Algorithms whose SB3 policy is an ActorCriticPolicy, the one that takes ortho_init.
ACTOR_CRITIC_ALGORITHMS = ("ppo", "a2c", "gail")
_LINEAR = re.compile(r"^lin_([0-9.eE+-]+)$")


def reference_keys(algo: str, learner: str = "ppo") -> tuple[str, ...]:
    """The config keys the reference library takes for ``algo`` (GAIL: with that ``learner``)."""
    if algo == "gail":
        return SHARED_KEYS + SB3_DIRECT[learner] + SB3_POLICY_KWARGS + GAIL_ADVERSARIAL + GAIL_OWN
    return SHARED_KEYS + SB3_DIRECT.get(algo, ()) + SB3_OPTIMIZER_KEYS.get(algo, ()) + SB3_POLICY_KWARGS


def gail_learner(hyperparameters: dict[str, Any]) -> str:
    """The GAIL experiment's ``learner`` (``ppo`` unless set); ValueError naming any other value."""
    learner = hyperparameters.get("learner", "ppo")
    if learner not in GAIL_LEARNERS:
        raise ValueError(f"learner must be one of {', '.join(map(repr, GAIL_LEARNERS))} for a reference GAIL "
                         f"run (imitation's gen_algo is an SB3 PPO or A2C), got {learner!r}")
    return learner


def flatten_gail(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """GAIL's settings with ``learner_kwargs`` spread flat under the flat keys (ours applies a flat
    key over ``learner_kwargs`` too); ValueError if ``learner_kwargs`` is not an object."""
    nested = hyperparameters.get("learner_kwargs", {})
    if not isinstance(nested, dict):
        raise ValueError(f"learner_kwargs must be an object of the learner's settings, got {nested!r}")
    return {**nested, **{key: value for key, value in hyperparameters.items() if key != "learner_kwargs"}}


def parse_schedule(value: Any, key: str) -> tuple[str, float]:
    """A number -> ("constant", x); ``"lin_x"`` -> ("linear", x); anything else is an error naming it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "constant", float(value)
    if isinstance(value, str):
        match = _LINEAR.match(value)
        if match:
            try:
                return "linear", float(match.group(1))
            except ValueError:
                pass
    raise ValueError(f"{key} must be a number or a linear schedule like \"lin_1e-3\", got {value!r}")


def check_env_wrapper(name: Any, algo: str) -> str:
    """``name`` if it is a key of ``ENV_WRAPPERS``; ValueError with the closest one otherwise."""
    if isinstance(name, str) and name in ENV_WRAPPERS:
        if algo == "gail":
            raise ValueError(f"env_wrapper {name!r} cannot wrap a GAIL experiment's envs: its expert "
                             "demonstrations are recorded on the unwrapped env")
        return name
    from agents_zoo.core.suggest import did_you_mean  # on error only, as in config._check_keys

    raise ValueError(f"env_wrapper must be one of {', '.join(map(repr, ENV_WRAPPERS))}, got {name!r}"
                     f"{did_you_mean(name, ENV_WRAPPERS)}")


def env_wrapper_class(name: str | None) -> Callable[[Any], Any] | None:
    """The wrapper class an experiment's ``env_wrapper`` names, or None for none (SB3's
    ``make_vec_env(wrapper_class=...)`` takes either); imported when a run builds its envs."""
    if name is None:
        return None
    module, attribute = ENV_WRAPPERS[name]
    return getattr(importlib.import_module(module), attribute)


def env_maker(env_id: str, env_kwargs: dict[str, Any], env_wrapper: str | None = None) -> Callable[[], Any]:
    """A function that makes one env of a run: ``gym.make(env_id, **env_kwargs)``, wrapped in the
    experiment's ``env_wrapper``. Our agents train on it, and both libraries are evaluated on it."""
    import gymnasium as gym

    wrapper = env_wrapper_class(env_wrapper)

    def make() -> Any:
        env = gym.make(env_id, **env_kwargs)
        return env if wrapper is None else wrapper(env)

    return make


def check_hyperparameters(algo: str, library: str, hyperparameters: dict[str, Any]) -> None:
    """Raise ValueError naming the first key or value the library cannot take."""
    for key in SCHEDULE_KEYS:
        if key in hyperparameters:
            parse_schedule(hyperparameters[key], key)
    if "activation" in hyperparameters and hyperparameters["activation"] not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {hyperparameters['activation']!r}")
    if library == "ours":
        _check_ours(algo, hyperparameters)
        return
    if algo == "gail":
        hyperparameters = flatten_gail(hyperparameters)
        known = reference_keys(algo, gail_learner(hyperparameters))
        if hyperparameters.get("disc_activation", "relu") not in ACTIVATIONS:
            raise ValueError(f"disc_activation must be one of {ACTIVATIONS}, got {hyperparameters['disc_activation']!r}")
    else:
        known = reference_keys(algo)
    for key in hyperparameters:
        if key not in known:
            from agents_zoo.core.suggest import did_you_mean  # on error only, as in config._check_keys

            hint = did_you_mean(key, known, sentence=True)
            raise ValueError(f"{key!r} has no {library} equivalent for {algo}.{hint} "
                             f"Mapped names: {', '.join(known)}")


def _check_ours(algo: str, hyperparameters: dict[str, Any]) -> None:
    # Our agent's config class validates names (closest match) and values; an agent that is
    # not installed yet is reported when its run starts, so configs stay loadable meanwhile.
    import agents_zoo

    if algo not in agents_zoo.list_agents():
        return
    config_class = agents_zoo.get_agent_class(algo).config_class
    config_class.from_dict(to_ours(algo, hyperparameters))


# ----------------------------------------------------------------------------- ours
def to_ours(algo: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Our agents take SB3's names; only the schedule strings, ``normalize`` and ``ortho_init`` are rewritten."""
    result: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        if key == "ortho_init" and algo in ACTOR_CRITIC_ALGORITHMS:
            # SB3's ortho_init=True is our orthogonal init (gains sqrt(2) / 0.01 / 1); False keeps
            # PyTorch's default init, our network_init="torch".
            if not isinstance(value, bool):
                raise ValueError(f"ortho_init must be true or false, got {value!r}")
            result["network_init"] = "orthogonal" if value else "torch"
        elif key == "normalize":
            result["normalize_observation"] = bool(value)
            result["normalize_reward"] = bool(value)
        elif key in SCHEDULE_KEYS:
            kind, start = parse_schedule(value, key)
            result[key] = start
            if kind == "linear":
                result[f"{key}_schedule"] = "linear"
        else:
            result[key] = value
    if algo == "dqn":
        # SB3's DQN is vanilla: the same algorithm on our side unless a variant asks for Double/dueling DQN.
        result.setdefault("double_q", False)
        result.setdefault("dueling", False)
    return result


# ----------------------------------------------------------------------------- SB3 / imitation
def sb3_vec_env(protocol: str) -> str:
    """The SB3 vector env class of a run: ``SubprocVecEnv`` (n_envs processes, SB3's advice for
    using several cores) for a whole-machine run, the in-process ``DummyVecEnv`` for one thread."""
    from benchmarks.config import WHOLE_MACHINE

    return "SubprocVecEnv" if protocol == WHOLE_MACHINE else "DummyVecEnv"


def to_sb3(algo: str, hyperparameters: dict[str, Any],
           protocol: str = "single-thread") -> tuple[dict[str, Any], dict[str, Any]]:
    """(constructor kwargs, harness settings) for SB3's PPO / A2C / DQN (GAIL: its learner's).

    Harness settings are those that act outside the constructor: ``n_envs``, ``normalize``, the
    vector env class the run's ``protocol`` calls for (``vec_env``, a name in
    ``stable_baselines3.common.vec_env``) and for GAIL the adversarial trainer's arguments
    (``gail``), the learner (``learner``: ``ppo`` or ``a2c``) and the reward net's (``reward_net``).
    """
    import torch

    activations = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU}
    settings: dict[str, Any] = {"n_envs": 1, "normalize": False, "gail": {}, "vec_env": sb3_vec_env(protocol)}
    if algo == "gail":
        hyperparameters = flatten_gail(hyperparameters)
        settings["learner"] = gail_learner(hyperparameters)
        settings["reward_net"] = {}
    direct = SB3_DIRECT[settings["learner"] if algo == "gail" else algo]
    kwargs: dict[str, Any] = {}
    policy_kwargs: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        if key in ("n_envs", "normalize"):
            settings[key] = value
        elif key == "learner":
            pass
        elif key == "disc_hidden_sizes":
            settings["reward_net"]["hid_sizes"] = tuple(value)
        elif key == "disc_activation":
            settings["reward_net"]["activation"] = activations[value]
        elif key == "policy_hidden_sizes":
            policy_kwargs["net_arch"] = list(value)
        elif key == "activation":
            policy_kwargs["activation_fn"] = activations[value]
        elif key in SCHEDULE_KEYS:
            kind, start = parse_schedule(value, key)
            kwargs[key] = start if kind == "constant" else LinearSchedule(start)
        elif key in SB3_POLICY_KWARGS:
            policy_kwargs[key] = value
        elif key in SB3_OPTIMIZER_KEYS.get(algo, ()):  # rms_prop_tf_like, the one such key
            if value:  # RL-Zoo's a2c.yml atari: policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))
                from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

                policy_kwargs["optimizer_class"] = RMSpropTFLike
                policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=hyperparameters.get("rms_prop_eps", 1e-5),
                                                         weight_decay=0)
        elif key in GAIL_ADVERSARIAL:
            settings["gail"][key] = value
        elif key in direct or key in ("gamma", "max_grad_norm"):
            kwargs[key] = value
        else:  # check_hyperparameters ran at config load; this guards direct callers
            raise ValueError(f"{key!r} has no SB3 equivalent for {algo}")
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    if settings["normalize"]:
        # As RL-Zoo's ExperimentManager ("use the same discount factor as for the algorithm"), and as
        # ours, whose reward scaling discounts with the agent's gamma; VecNormalize's own default is 0.99.
        settings["vec_normalize"] = {"gamma": kwargs.get("gamma", 0.99)}
    return kwargs, settings


class LinearSchedule:
    """SB3 calls schedules with progress_remaining (1 -> 0); a class, not a lambda, so it prints."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start

    def __repr__(self) -> str:
        return f"lin_{self.start!r}"


def mapping_table_markdown() -> str:
    lines = ["| config key | ours (agents_zoo.make) | reference (SB3 / imitation) | note |",
             "|---|---|---|---|"]
    for key, ours, reference, note in SHARED_ROWS:
        lines.append(f"| `{key}` | `{ours}` | `{reference}` | {note} |")
    for algo, keys in SB3_DIRECT.items():
        lines.append(f"| {algo}: {', '.join(f'`{k}`' for k in keys)} | same names | same names | passed through |")
    lines.append(f"| {', '.join(f'`{k}`' for k in SB3_POLICY_KWARGS)} | same names | `policy_kwargs.<name>` | |")
    lines.append("| a2c: `rms_prop_tf_like` | same name | `policy_kwargs.optimizer_class=RMSpropTFLike`, "
                 "`optimizer_kwargs=dict(alpha=0.99, eps=rms_prop_eps)` | TF 1's RMSprop, as RL-Zoo's Atari A2C |")
    lines.append(f"| gail: {', '.join(f'`{k}`' for k in GAIL_ADVERSARIAL)} | same names | "
                 "`imitation.algorithms.adversarial.gail.GAIL(...)` | |")
    lines.append("| gail: `learner` (ppo, a2c), `learner_kwargs` | same names | `GAIL(gen_algo=PPO / A2C(...))` with "
                 "the learner_kwargs and the flat keys of that algorithm | a flat key is applied over learner_kwargs; "
                 "`lin_` schedules anneal over the whole budget on both sides (imitation calls learn() once per "
                 "round); `normalize`: VecNormalize above imitation's reward wrapper |")
    lines.append("| gail: `disc_hidden_sizes`, `disc_activation` | same names | `BasicRewardNet(hid_sizes=..., "
                 "activation=...)` | imitation's default is (32, 32), ReLU, as ours |")
    lines.append("| experiment `demonstrations` | `make(\"gail\", demonstrations=...)` | `GAIL(demonstrations=to_trajectories(...))` "
                 "| the same cached expert episodes feed both |")
    lines.append("| `ortho_init` (ppo, a2c) | `network_init`: true -> orthogonal, false -> torch | "
                 "`policy_kwargs.ortho_init` | |")
    lines.append(f"| experiment `env_wrapper`: {', '.join(f'`{name}`' for name in ENV_WRAPPERS)} | "
                 "`make(algo, lambda: Wrapper(gym.make(env)))` | `make_vec_env(wrapper_class=Wrapper)` | one class for "
                 "both libraries (`wrappers.TimeFeatureWrapper`), evaluation envs too; not for GAIL (its "
                 "demonstrations are unwrapped) |")
    lines.append("| dqn (implicit) | `double_q=False, dueling=False` unless a variant sets them | vanilla DQN | SB3 has neither |")
    lines.append("| experiment `variants` | each label's settings override ours | runs the experiment's settings once | "
                 "report rows `ours[label]` |")
    lines.append("| `seed` (run) | `make(..., seed=s)` | `seed=s`, `env.seed(s)` | evaluation env seeded from s on both sides |")
    lines.append("| `protocol` single-thread (default) | TF intra/inter-op pools 1, sync vector env | "
                 "`torch.set_num_threads(1)`, `DummyVecEnv` | runs share the machine, one thread each |")
    lines.append("| `protocol` whole-machine | TF intra/inter-op pools = cores; on our Atari ids ale-py's C++ "
                 "`AtariVectorEnv` with threads = cores where installed (ale-py >= 0.12), else the sync vector env | "
                 "`torch.set_num_threads(cores)`, `SubprocVecEnv` (n_envs processes; imitation: "
                 "`make_vec_env(parallel=True)`) | one run at a time, nothing beside it |")
    return "\n".join(lines)
