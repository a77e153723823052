"""Sweep configs: one JSON file -> a validated list of runs.

A config lists experiments; each experiment is (algorithm, env, budget, hyperparameters,
seeds, libraries). Every experiment is run by our implementation and by the reference library
with the same hyperparameters (translated by ``benchmarks.translate``) and the same seeds.

    {
      "name": "quick",
      "description": "PPO on CartPole-v1, a tiny budget: the README smoke test",
      "seeds": [0, 1],
      "evaluation": {"eval_every": 4000, "n_eval_episodes": 5, "n_final_episodes": 10},
      "random_baseline": true,
      "experiments": [
        {"algo": "ppo", "env": "CartPole-v1", "budget": 16000, "libraries": ["ours", "sb3"],
         "target_return": 500, "hyperparameters": {"n_envs": 8, "n_steps": 32, ...}}
      ]
    }

Top-level ``seeds``, ``evaluation`` and ``protocol`` are defaults that an experiment may override. With
``random_baseline`` our ``random`` agent is evaluated once per (env, seed) to anchor the
normalized scores. A bad key or value raises ``ConfigError`` naming where it is, the value and
what was expected; unknown algorithm, library and env names come with the closest match.

``protocol`` says how each run may use the machine: ``"single-thread"`` (the default) pins
every run to one thread, so runs of several workers proceed side by side and steps/s measure
the implementation; ``"whole-machine"`` runs each library as its documentation recommends on
all the machine's cores (SB3 and imitation: ``SubprocVecEnv`` and ``torch.set_num_threads(cores)``;
ours: TF's thread pools = cores and its fastest vector env, ``trainers.fastest_vector_env``),
one run at a time with nothing beside it.
A list of both runs every experiment under each; the protocol is part of the run's key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

ALGORITHMS = ("ppo", "a2c", "dqn", "gail", "random")
LIBRARIES = ("ours", "sb3", "imitation")
# The reference implementation each algorithm is compared with.
REFERENCE_LIBRARY = {"ppo": "sb3", "a2c": "sb3", "dqn": "sb3", "gail": "imitation"}
LIBRARIES_FOR_ALGORITHM = {"ppo": ("ours", "sb3"), "a2c": ("ours", "sb3"), "dqn": ("ours", "sb3"),
                           "gail": ("ours", "imitation"), "random": ("ours",)}
# Algorithms whose agents only act in discrete action spaces (checked against the env up front).
DISCRETE_ONLY = {"dqn"}

TOP_LEVEL_KEYS = ("name", "description", "seeds", "evaluation", "random_baseline", "checkpoint_every", "headline",
                  "protocol", "experiments")
EXPERIMENT_KEYS = ("algo", "env", "budget", "libraries", "hyperparameters", "variants", "seeds", "evaluation",
                   "target_return", "env_kwargs", "env_wrapper", "demonstrations", "checkpoint_every", "protocol",
                   "notes")
SINGLE_THREAD, WHOLE_MACHINE = "single-thread", "whole-machine"
PROTOCOLS = (SINGLE_THREAD, WHOLE_MACHINE)
# What a run's protocol sets in its process: the sizes of NumPy's BLAS, TF's and OpenMP's thread pools.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
# Runs at least this long checkpoint by default, every tenth of their budget; shorter ones
# restart cheaply. ``checkpoint_every`` (top level or per experiment) overrides; 0 turns it off.
CHECKPOINT_BUDGET = 200_000
DEMONSTRATION_KEYS = ("expert", "expert_timesteps", "expert_hyperparameters", "n_episodes", "seed")
EXPERT_TRAINERS = ("sb3-ppo", "ppo", "trpo")
EVALUATION_KEYS = ("eval_every", "n_eval_episodes", "n_final_episodes")
DEFAULT_EVALUATION = {"eval_every": 10_000, "n_eval_episodes": 10, "n_final_episodes": 20}


class ConfigError(ValueError):
    """A sweep config that cannot be run; the message names the key, the value and the expectation."""


@dataclasses.dataclass(frozen=True)
class Evaluation:
    eval_every: int
    """Env steps between learning-curve evaluations."""
    n_eval_episodes: int
    """Episodes per learning-curve point."""
    n_final_episodes: int
    """Episodes of the final evaluation after training."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run: everything a child process needs, as plain JSON-able values."""

    algo: str
    env: str
    library: str
    seed: int
    budget: int
    hyperparameters: dict[str, Any]
    evaluation: Evaluation
    env_kwargs: dict[str, Any]
    target_return: float | None = None
    demonstrations: dict[str, Any] | None = None
    """GAIL only: how the expert episodes both libraries imitate are made (see runner.ensure_demonstrations)."""
    variant: str | None = None
    """Label of one of our configurations run beside the reference (the experiment's ``variants``)."""
    checkpoint_every: int | None = None
    """Env steps between in-run checkpoints (a killed run resumes from the last); not part of the key."""
    protocol: str = SINGLE_THREAD
    """How the run may use the machine (``PROTOCOLS``; see the module docstring)."""
    env_wrapper: str | None = None
    """Wrapper of every env of the run, both libraries' and evaluation's (``translate.ENV_WRAPPERS``)."""
    environment: dict[str, str] | None = None
    """Process environment variables of our variant's child, set before TF loads (``TF_ENABLE_ONEDNN_OPTS``)."""

    @property
    def hyperparameter_hash(self) -> str:
        """Hash of everything besides (algo, env, library, seed, budget) that changes the result."""
        payload = {"hyperparameters": self.hyperparameters, "evaluation": dataclasses.asdict(self.evaluation),
                   "env_kwargs": self.env_kwargs, "demonstrations": self.demonstrations}
        if self.env_wrapper is not None:  # absent otherwise, so runs made before env wrappers keep their hash
            payload["env_wrapper"] = self.env_wrapper
        if self.environment is not None:  # likewise
            payload["environment"] = self.environment
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]

    @property
    def key(self) -> dict[str, Any]:
        """Identifies a finished run: a re-run sweep skips runs whose key is already in the results."""
        key = {"algo": self.algo, "env": self.env, "library": self.library, "seed": self.seed,
               "budget": self.budget, "hyperparameter_hash": self.hyperparameter_hash}
        if self.variant is not None:  # absent otherwise, so records made before variants existed still match
            key["variant"] = self.variant
        if self.protocol != SINGLE_THREAD:  # likewise: single-thread records made before protocols still match
            key["protocol"] = self.protocol
        return key

    @property
    def key_text(self) -> str:
        return canonical_json(self.key)

    @property
    def library_label(self) -> str:
        """The library, and our variant's label where there is one (``ours[vanilla]``)."""
        return self.library if self.variant is None else f"{self.library}[{self.variant}]"

    @property
    def label(self) -> str:
        protocol = "" if self.protocol == SINGLE_THREAD else f"__{self.protocol}"
        return f"{self.env}__{self.algo}__{self.library_label}__seed{self.seed}{protocol}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(**{**data, "evaluation": Evaluation(**data["evaluation"])})


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    name: str
    description: str
    runs: tuple[RunSpec, ...]
    source: str
    headline: bool = True
    """Whether the README's headline table shows this sweep (smoke tests set it false)."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- loading
def shipped_config_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("benchmarks").joinpath("configs").iterdir()
                  if p.name.endswith(".json"))


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a JSON file, or the name of a shipped config (``quick`` -> configs/quick.json)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = resources.files("benchmarks").joinpath("configs", f"{name_or_path}.json")
    if shipped.is_file():
        return Path(str(shipped))
    from agents_zoo.core.suggest import did_you_mean  # see _check_keys

    names = shipped_config_names()
    hint = did_you_mean(name_or_path, names, sentence=True)
    raise ConfigError(f"config {name_or_path!r} is neither a file nor a shipped config name.{hint} "
                      f"Shipped configs: {', '.join(names)}")


def load_config(name_or_path: str, *, check_envs: bool = True) -> SweepConfig:
    path = resolve_config_path(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON: {exc}") from None
    return parse_config(data, source=str(path), check_envs=check_envs)


def parse_config(data: Any, *, source: str = "<dict>", check_envs: bool = True) -> SweepConfig:
    where = source
    _expect(isinstance(data, dict), f"{where}: the config must be a JSON object, got {type(data).__name__}")
    _check_keys(data, TOP_LEVEL_KEYS, where)
    for required in ("name", "experiments"):
        _expect(required in data, f"{where}: missing required key {required!r}")
    name = data["name"]
    _expect(isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum(),
            f"{where}: 'name' must be a word of letters, digits, '-' or '_' (it names the results folder), got {name!r}")
    description = data.get("description", "")
    _expect(isinstance(description, str), f"{where}: 'description' must be a string, got {description!r}")
    default_seeds = _parse_seeds(data.get("seeds", [0]), f"{where}: 'seeds'")
    default_evaluation = _parse_evaluation(data.get("evaluation", {}), DEFAULT_EVALUATION, f"{where}: 'evaluation'")
    default_protocols = _parse_protocols(data.get("protocol", SINGLE_THREAD), f"{where}: 'protocol'")
    random_baseline = data.get("random_baseline", True)
    _expect(isinstance(random_baseline, bool), f"{where}: 'random_baseline' must be true or false, got {random_baseline!r}")
    experiments = data["experiments"]
    _expect(isinstance(experiments, list) and experiments,
            f"{where}: 'experiments' must be a non-empty list, got {experiments!r}")

    runs: list[RunSpec] = []
    baseline_runs: dict[tuple[str, int], RunSpec] = {}
    for index, experiment in enumerate(experiments):
        at = f"{where}: experiments[{index}]"
        _expect(isinstance(experiment, dict), f"{at} must be an object, got {experiment!r}")
        _check_keys(experiment, EXPERIMENT_KEYS, at)
        for required in ("algo", "env", "budget"):
            _expect(required in experiment, f"{at}: missing required key {required!r}")
        algo = _parse_choice(experiment["algo"], ALGORITHMS, f"{at}.algo", "algorithm")
        env = experiment["env"]
        _expect(isinstance(env, str) and env, f"{at}.env must be an env id string, got {env!r}")
        if check_envs:
            _check_env(env, algo, f"{at}.env")
        budget = experiment["budget"]
        _expect(_is_int(budget) and budget >= 1, f"{at}.budget must be a positive int of env steps, got {budget!r}")
        libraries = experiment.get("libraries", list(LIBRARIES_FOR_ALGORITHM[algo]))
        _expect(isinstance(libraries, list) and libraries, f"{at}.libraries must be a non-empty list, got {libraries!r}")
        for library in libraries:
            _parse_choice(library, LIBRARIES, f"{at}.libraries", "library")
            _expect(library in LIBRARIES_FOR_ALGORITHM[algo],
                    f"{at}.libraries: {library!r} has no {algo!r}; expected one of {list(LIBRARIES_FOR_ALGORITHM[algo])}")
        _expect(len(set(libraries)) == len(libraries), f"{at}.libraries lists a library twice: {libraries!r}")
        hyperparameters = experiment.get("hyperparameters", {})
        _expect(isinstance(hyperparameters, dict), f"{at}.hyperparameters must be an object, got {hyperparameters!r}")
        from benchmarks import translate  # late: translate imports this module's names

        for library in libraries:
            try:
                translate.check_hyperparameters(algo, library, hyperparameters)
            except ValueError as exc:
                raise ConfigError(f"{at}.hyperparameters: {exc}") from None
        checkpoint_every = experiment.get("checkpoint_every", data.get("checkpoint_every"))
        _expect(checkpoint_every is None or (_is_int(checkpoint_every) and checkpoint_every >= 0),
                f"{at}.checkpoint_every must be a non-negative int of env steps (0: never), got {checkpoint_every!r}")
        if checkpoint_every is None:
            checkpoint_every = budget // 10 if _is_int(budget) and budget >= CHECKPOINT_BUDGET else 0
        variants = _parse_variants(experiment.get("variants"), algo, hyperparameters, libraries, f"{at}.variants")
        env_kwargs = experiment.get("env_kwargs", {})
        _expect(isinstance(env_kwargs, dict), f"{at}.env_kwargs must be an object, got {env_kwargs!r}")
        env_wrapper = experiment.get("env_wrapper")
        try:
            env_wrapper = None if env_wrapper is None else translate.check_env_wrapper(env_wrapper, algo)
        except ValueError as exc:
            raise ConfigError(f"{at}.{exc}") from None
        target = experiment.get("target_return")
        _expect(target is None or (_is_number(target)), f"{at}.target_return must be a number, got {target!r}")
        demonstrations = _parse_demonstrations(experiment.get("demonstrations"), algo, f"{at}.demonstrations")
        seeds = _parse_seeds(experiment["seeds"], f"{at}.seeds") if "seeds" in experiment else default_seeds
        protocols = (_parse_protocols(experiment["protocol"], f"{at}.protocol") if "protocol" in experiment
                     else default_protocols)
        evaluation = _parse_evaluation(experiment.get("evaluation", {}), dataclasses.asdict(default_evaluation),
                                       f"{at}.evaluation")
        _expect(evaluation.eval_every <= budget,
                f"{at}.evaluation.eval_every ({evaluation.eval_every}) must not exceed the budget ({budget})")
        # Seed-major: each seed's runs of every library and variant come together, so the libraries
        # alternate through the sweep. Runs share the machine (and a VM's host) with their neighbours
        # in this order; library-major order ran one library's runs beside each other and the other's
        # minutes later, so a drift of the host's speed or a partner's cache traffic fell on one side
        # of each speed ratio.
        for protocol in protocols:
            for seed in seeds:
                for library in libraries:
                    configurations = variants.items() if (library == "ours" and variants) else [(None, ({}, None))]
                    for variant, (settings, environment) in configurations:
                        runs.append(RunSpec(algo, env, library, seed, int(budget), {**hyperparameters, **settings},
                                            evaluation, env_kwargs, None if target is None else float(target),
                                            demonstrations, variant, checkpoint_every or None, protocol,
                                            env_wrapper, environment))
        if random_baseline and algo != "random":
            for seed in seeds:
                # Budget 0: the random agent is only evaluated; it has nothing to learn.
                baseline = RunSpec("random", env, "ours", seed, 0, {}, Evaluation(0, 0, evaluation.n_final_episodes),
                                   env_kwargs)
                baseline_runs.setdefault((env, seed), baseline)
    keys = [run.key_text for run in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    _expect(not duplicates, f"{where}: the same run is listed twice: {duplicates[0] if duplicates else ''}")
    all_runs = runs + [run for run in baseline_runs.values() if run.key_text not in set(keys)]
    headline = data.get("headline", True)
    _expect(isinstance(headline, bool), f"{where}: 'headline' must be true or false, got {headline!r}")
    return SweepConfig(name=name, description=description, runs=tuple(all_runs), source=source, headline=headline)


# ----------------------------------------------------------------------------- checks
def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(data: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            # Imported on error only: the runner imports this module before it sets the thread
            # variables, and importing agents_zoo loads NumPy, whose BLAS reads them at import.
            from agents_zoo.core.suggest import did_you_mean

            hint = did_you_mean(key, known, sentence=True)
            raise ConfigError(f"{where}: unknown key {key!r}.{hint} Known keys: {', '.join(known)}")


def _parse_choice(value: Any, choices: tuple[str, ...], where: str, what: str) -> str:
    if value in choices:
        return value
    from agents_zoo.core.suggest import did_you_mean  # see _check_keys

    hint = did_you_mean(value, choices, sentence=True)
    raise ConfigError(f"{where}: unknown {what} {value!r}.{hint} Expected one of: {', '.join(choices)}")


def _parse_seeds(value: Any, where: str) -> tuple[int, ...]:
    _expect(isinstance(value, list) and value and all(_is_int(s) and s >= 0 for s in value),
            f"{where} must be a non-empty list of non-negative ints, got {value!r}")
    _expect(len(set(value)) == len(value), f"{where} lists a seed twice: {value!r}")
    return tuple(value)


def _parse_protocols(value: Any, where: str) -> tuple[str, ...]:
    """``"single-thread"``, ``"whole-machine"`` or a list of them -> the protocols, in the given order."""
    values = value if isinstance(value, list) else [value]
    allowed = " or ".join(repr(p) for p in PROTOCOLS)
    _expect(bool(values) and all(isinstance(v, str) and v in PROTOCOLS for v in values),
            f"{where} must be {allowed}, or a list of them; got {value!r}")
    _expect(len(set(values)) == len(values), f"{where} lists a protocol twice: {value!r}")
    return tuple(values)


def _parse_evaluation(value: Any, defaults: dict[str, int], where: str) -> Evaluation:
    _expect(isinstance(value, dict), f"{where} must be an object, got {value!r}")
    _check_keys(value, EVALUATION_KEYS, where)
    merged = {**defaults, **value}
    for key in EVALUATION_KEYS:
        _expect(_is_int(merged[key]) and merged[key] >= 1, f"{where}.{key} must be a positive int, got {merged[key]!r}")
    return Evaluation(**merged)


def _parse_variants(value: Any, algo: str, hyperparameters: dict[str, Any], libraries: list[str],
                    where: str) -> dict[str, tuple[dict[str, Any], dict[str, str] | None]]:
    """``{"label": {our hyperparameters}}``: several of our configurations beside the one reference run,
    as ``{label: (hyperparameters, environment or None)}``.

    Each variant's settings override the experiment's hyperparameters for our runs only; the
    reference library runs the experiment's hyperparameters once. A variant's ``environment``
    (``{"NAME": "value"}``) is set in its runs' processes before TensorFlow loads: process-wide
    switches such as ``TF_ENABLE_ONEDNN_OPTS``, which no hyperparameter can reach.
    """
    if value is None:
        return {}
    _expect(isinstance(value, dict) and value, f"{where} must be a non-empty object of label -> settings, got {value!r}")
    _expect("ours" in libraries, f"{where}: variants are our configurations, but 'ours' is not in the libraries")
    from benchmarks import translate

    parsed = {}
    for label, overrides in value.items():
        _expect(label.replace("-", "").replace("_", "").isalnum(),
                f"{where}: variant label {label!r} must be a word of letters, digits, '-' or '_'")
        _expect(isinstance(overrides, dict), f"{where}.{label} must be an object of settings, got {overrides!r}")
        if "environment" in overrides:
            _check_environment(overrides["environment"], f"{where}.{label}.environment")
        settings = {name: value for name, value in overrides.items() if name != "environment"}
        try:
            translate.check_hyperparameters(algo, "ours", {**hyperparameters, **settings})
        except ValueError as exc:
            raise ConfigError(f"{where}.{label}: {exc}") from None
        parsed[label] = (settings, overrides.get("environment"))
    return parsed


def _check_environment(value: Any, where: str) -> None:
    _expect(isinstance(value, dict) and value,
            f"{where} must be a non-empty object of variable name -> string value, got {value!r}")
    for name, setting in value.items():
        _expect(name.replace("_", "").isalnum() and name.isupper() and not name[0].isdigit(),
                f"{where}: {name!r} is not an environment variable name (upper-case letters, digits, '_')")
        _expect(name not in THREAD_VARIABLES,
                f"{where}: {name} is set by the run's protocol (single-thread: 1, whole-machine: the cores), "
                "not by a variant")
        _expect(isinstance(setting, str), f"{where}.{name} must be a string, got {setting!r}")


def _parse_demonstrations(value: Any, algo: str, where: str) -> dict[str, Any] | None:
    if algo != "gail":
        _expect(value is None, f"{where}: only GAIL experiments take demonstrations, this one is {algo!r}")
        return None
    _expect(isinstance(value, dict), f"{where}: GAIL experiments need a demonstrations object with keys "
                                     f"{', '.join(DEMONSTRATION_KEYS)}, got {value!r}")
    _check_keys(value, DEMONSTRATION_KEYS, where)
    settings = {"expert": "sb3-ppo", "expert_timesteps": 100_000, "expert_hyperparameters": {}, "n_episodes": 60,
                "seed": 0, **value}
    _parse_choice(settings["expert"], EXPERT_TRAINERS, f"{where}.expert", "expert trainer")
    for key in ("expert_timesteps", "n_episodes"):
        _expect(_is_int(settings[key]) and settings[key] >= 1, f"{where}.{key} must be a positive int, got {settings[key]!r}")
    _expect(_is_int(settings["seed"]) and settings["seed"] >= 0, f"{where}.seed must be a non-negative int, got {settings['seed']!r}")
    _expect(isinstance(settings["expert_hyperparameters"], dict),
            f"{where}.expert_hyperparameters must be an object, got {settings['expert_hyperparameters']!r}")
    return settings


def _check_env(env_id: str, algo: str, where: str) -> None:
    """Unknown ids fail with the closest registered id; DQN on a continuous env fails here, not in a child."""
    import gymnasium as gym

    from agents_zoo.core.envs import UnknownEnvError, check_env_id

    try:
        check_env_id(env_id)  # also imports the package behind seals/... and module:EnvId ids
    except UnknownEnvError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if algo in DISCRETE_ONLY:
        entry = gym.registry[env_id]
        if not _has_discrete_actions(entry):
            raise ConfigError(f"{where}: {algo!r} needs a discrete action space but {env_id!r} has continuous actions")


_CONTINUOUS_HINTS = ("Pendulum", "Bullet", "MountainCarContinuous", "LunarLanderContinuous", "BipedalWalker")


def _has_discrete_actions(entry: Any) -> bool:
    # Building an env (an emulator, a physics engine) only to read its action space is slow;
    # the ids with continuous actions are recognizable by name.
    return not any(hint in entry.id for hint in _CONTINUOUS_HINTS)


def shipped_experiment(config_name: str, algo: str, env: str, variant: str | None = None) -> tuple[int, dict[str, Any]]:
    """(budget, our agent's keyword arguments) of one experiment of a shipped config.

    Tests train with exactly the settings the benchmarks publish, read from the config, so
    the two cannot drift apart.
    """
    from benchmarks import translate

    spec = shipped_run(config_name, algo, env, variant)
    return spec.budget, translate.to_ours(algo, spec.hyperparameters)


def shipped_run(config_name: str, algo: str, env: str, variant: str | None = None) -> RunSpec:
    """The first of our runs of one experiment of a shipped config: its settings as the sweep runs them
    (for GAIL also ``demonstrations``, how the expert episodes are made)."""
    sweep = load_config(config_name, check_envs=False)
    for spec in sweep.runs:
        if (spec.algo, spec.env, spec.library, spec.variant) == (algo, env, "ours", variant):
            return spec
    raise KeyError(f"config {config_name!r} has no {algo!r} experiment on {env!r}"
                   + (f" with variant {variant!r}" if variant else ""))
