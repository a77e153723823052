"""Evaluate the policies a sweep kept (``agents-zoo bench --models DIR``) again, with more episodes.

A run's final evaluation is a few episodes, so one run's final score is noisy: on Atari here 10
lives, 8 of them a game's first, and only 5-6 of them distinct in a DQN Breakout run (a greedy
policy on the deterministic emulator often plays the same life again from another no-op start).
A kept policy plays as many episodes as asked, with the function that evaluated the run
(``progress.evaluate_policy``), on the run's own env (id, kwargs, wrapper) and evaluation seed:
asked for the final evaluation's count, it plays that evaluation again episode for episode.
Each evaluation is appended to ``DIR/evaluations.jsonl``, and a table gives each run's mean and
standard error and, per library, the IQM over runs. A run already evaluated there with as many
episodes is not played again (it would replay the same episodes: the policy is greedy and the seed
the run's), so a folder that gains runs, as a sweep's seeds finish one by one, is evaluated only
where it is new.

Our ``agent.zip`` loads without pickle; SB3's ``model.zip`` and ``vecnormalize.pkl`` are SB3's
own formats, which unpickle: evaluate only folders a sweep of yours wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.config import RunSpec, canonical_json
from benchmarks.progress import evaluate_policy
from benchmarks.report import EVALUATIONS_FILE, load_evaluations, mean_and_standard_error
from benchmarks.trainers import OUR_MODEL_FILE, REFERENCE_MODEL_FILE, VEC_NORMALIZE_FILE, sb3_act


def kept_runs(folder: Path) -> list[tuple[Path, RunSpec]]:
    """The run folders under ``folder`` that hold a kept policy and its ``spec.json``, by name."""
    from benchmarks.runner import SPEC_FILE

    runs = []
    for run_folder in sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if (run_folder / SPEC_FILE).is_file():
            runs.append((run_folder, RunSpec.from_json(json.loads((run_folder / SPEC_FILE).read_text(encoding="utf-8")))))
    return runs


def load_policy(run_folder: Path, spec: RunSpec) -> Callable[[Any], Any]:
    """The deterministic batch policy of a kept run, acting as the run's final evaluation did."""
    if (run_folder / OUR_MODEL_FILE).is_file():
        import agents_zoo

        agent = agents_zoo.get_agent_class(spec.algo).load(run_folder / OUR_MODEL_FILE)
        return lambda obs: agent.predict(obs, deterministic=True)[0]
    import stable_baselines3
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from benchmarks import translate

    # imitation's generator is an SB3 model of the learner's class (trainers.train_imitation).
    algo = translate.gail_learner(spec.hyperparameters) if spec.algo == "gail" else spec.algo
    model = {"ppo": stable_baselines3.PPO, "a2c": stable_baselines3.A2C, "dqn": stable_baselines3.DQN}[algo].load(
        str(run_folder / REFERENCE_MODEL_FILE), device="cpu")
    normalizer = None
    if (run_folder / VEC_NORMALIZE_FILE).is_file():
        venv = DummyVecEnv([translate.env_maker(spec.env, spec.env_kwargs, spec.env_wrapper)])
        normalizer = VecNormalize.load(str(run_folder / VEC_NORMALIZE_FILE), venv)
        normalizer.training = False
    return sb3_act(model, normalizer)


def evaluate_kept_models(folder: str | Path, episodes: int, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Play ``episodes`` episodes with each kept policy under ``folder`` not yet evaluated with as
    many; append the new records and return them with the earlier ones, one per run."""
    from agents_zoo.core.serialization import atomic_append_line

    folder = Path(folder)
    runs = kept_runs(folder) if folder.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no kept models in {folder} (folders with a spec.json that "
                                "`agents-zoo bench --models` writes)")
    # Matched on the episodes the record holds, as the report counts them (report.kept_evaluation_lines)
    earlier = {(canonical_json(record["key"]), len(record["returns"])): record
               for record in load_evaluations(folder / EVALUATIONS_FILE)}
    records = []
    for run_folder, spec in runs:
        record = earlier.get((canonical_json(spec.key), episodes))
        note = f" (evaluated before: {EVALUATIONS_FILE})"
        if record is None:
            returns, lengths = evaluate_policy(load_policy(run_folder, spec), spec.env, spec.env_kwargs, episodes,
                                               spec.seed, spec.env_wrapper)
            record = {"key": spec.key, "label": spec.label, "episodes": episodes, "returns": returns,
                      "lengths": lengths}
            atomic_append_line(folder / EVALUATIONS_FILE, json.dumps(record, sort_keys=True))
            note = ""
        records.append(record)
        log(f"  {spec.label}: {np.mean(record['returns']):.1f} +- {np.std(record['returns']):.1f} over "
            f"{episodes} episodes{note}")
    return records


def evaluations_table(records: list[dict[str, Any]]) -> str:
    """Markdown: each run's mean return with its standard error, then each library's IQM over runs."""
    from benchmarks import stats
    from benchmarks.report import protocol_of, run_label

    lines = ["| run | episodes | mean return +- standard error |", "|---|---|---|"]
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for record in records:
        mean, error = mean_and_standard_error(record["returns"])
        lines.append(f"| {record['label']} | {len(record['returns'])} | {mean:.1f} +- {error:.1f} |")
        key = record["key"]
        groups.setdefault((key["algo"], key["env"], protocol_of(key), run_label(key)), []).append(mean)
    lines += ["", "| algo | env | protocol | library | runs | IQM of the run means [95% CI] |", "|---|---|---|---|---|---|"]
    for (algo, env, protocol, label), means in sorted(groups.items()):
        lines.append(f"| {algo} | {env} | {protocol} | {label} | {len(means)} | {stats.iqm_interval(means).format()} |")
    return "\n".join(lines)
