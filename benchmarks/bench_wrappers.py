"""Agent steps per second of Atari preprocessing chains against the emulator limit, in one run.

Chains, all on the same game with frame skip 4, random actions, resets at episode end, and the
observation materialized as a NumPy array each step (what an agent consumes):

- emulator limit (env.step): ``<Game>NoFrameskip-v4`` stepped frame by frame through gym.make's
  env, frames/s divided by 4 (~2,530 on Pong on this machine).
- emulator limit (bare ALE): ``ale.act`` alone, frames/s divided by 4 (no screen copies at all).
- ours: ``agents_zoo/<Game>-dqn-v0`` (the full DQN preset: noop, skip+max, life, fire, 84x84
  gray, clip, stack of 4).
- gymnasium: ``FrameStack(AtariPreprocessing(...), 4)``.
- sb3: ``FrameStack(stable_baselines3 AtariWrapper(...), 4)`` (skipped if SB3 is missing).

Repeats are interleaved across chains so that machine load drifts hit all of them alike; the
table reports the median and the best repeat (on a shared machine the best is the least
disturbed estimate of what a chain can do; ratios are given for both). Results go atomically to benchmarks/results/wrappers_<game>.{json,md}.

Example:
    python benchmarks/bench_wrappers.py --steps 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

FRAME_SKIP = 4
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure agent steps/s of our DQN Atari preset vs the emulator limit and the "
        "gymnasium / SB3 preprocessing chains (one run, interleaved repeats, median reported).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--game", default="Pong", help="ALE game name (a <Game>NoFrameskip-v4 id must exist)")
    parser.add_argument("--steps", type=int, default=5000, help="agent steps per chain per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per chain")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env resets and the random actions")
    parser.add_argument(
        "--chains", nargs="+", default=["emulator", "ale", "ours", "gymnasium", "sb3"],
        choices=["emulator", "ale", "ours", "gymnasium", "sb3"], help="chains to measure",
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help="where the JSON and markdown go")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error(f"--steps and --repeats must be positive, got {args.steps} and {args.repeats}")
    return args


def time_env_steps(env, steps: int, seed: int, frames_per_step: int = 1) -> float:
    """Agent steps/s of ``env`` (``frames_per_step`` raw frames count as one agent step)."""
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, size=steps * frames_per_step)
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions.tolist():
        obs, _, terminated, truncated, _ = env.step(action)
        np.asarray(obs)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def time_bare_ale(env, steps: int, seed: int) -> float:
    ale = env.unwrapped.ale
    action_set = env.unwrapped._action_set
    actions = np.random.default_rng(seed).integers(0, len(action_set), size=steps * FRAME_SKIP)
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions.tolist():
        ale.act(action_set[action])
        if ale.game_over():
            ale.reset_game()
    return steps / (time.perf_counter() - start)


def build_chains(game: str, names: list[str]) -> dict[str, Callable[[int, int], float]]:
    import ale_py  # noqa: F401 - registers the NoFrameskip-v4 ids
    import gymnasium as gym

    import wrappers  # noqa: F401 - registers our ids under gymnasium 1.x too
    from wrappers.frame_stack import gymnasium_frame_stack

    base_id = f"{game}NoFrameskip-v4"
    chains: dict[str, Callable[[int, int], float]] = {}
    if "emulator" in names:
        env = gym.make(base_id)
        chains["emulator limit (env.step)"] = lambda steps, seed: time_env_steps(env, steps, seed, FRAME_SKIP)
    if "ale" in names:
        bare = gym.make(base_id)
        chains["emulator limit (bare ALE)"] = lambda steps, seed: time_bare_ale(bare, steps, seed)
    if "ours" in names:
        ours = gym.make(f"agents_zoo/{game}-dqn-v0")
        chains["ours: agents_zoo DQN preset"] = lambda steps, seed: time_env_steps(ours, steps, seed)
    if "gymnasium" in names:
        reference = gymnasium_frame_stack(gym.wrappers.AtariPreprocessing(gym.make(base_id)), 4)
        chains["gymnasium AtariPreprocessing + FrameStack"] = lambda steps, seed: time_env_steps(
            reference, steps, seed
        )
    if "sb3" in names:
        try:
            from stable_baselines3.common.atari_wrappers import AtariWrapper
        except ImportError:
            print("stable_baselines3 is not installed: skipping the SB3 chain")
        else:
            sb3 = gymnasium_frame_stack(AtariWrapper(gym.make(base_id)), 4)
            chains["sb3 AtariWrapper + FrameStack"] = lambda steps, seed: time_env_steps(sb3, steps, seed)
    return chains


def render_markdown(result: dict) -> str:
    lines = [
        f"# Atari preprocessing speed: {result['game']}",
        "",
        f"{result['steps']} agent steps x {result['repeats']} interleaved repeats (median), frame skip "
        f"{FRAME_SKIP}, random actions, one process on {result['machine']}. Ratios are against the "
        "emulator limit measured through env.step in the same run.",
        "",
        "| chain | median steps/s | best steps/s | all repeats | median vs limit | best vs limit |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, row in result["chains"].items():
        repeats = ", ".join(f"{value:,.0f}" for value in row["repeats"])
        ratios = [row["ratio_to_emulator_limit"], row["best_ratio_to_emulator_limit"]]
        median_ratio, best_ratio = ("" if ratio is None else f"{100 * ratio:.0f}%" for ratio in ratios)
        lines.append(
            f"| {name} | {row['median']:,.0f} | {row['best']:,.0f} | {repeats} | {median_ratio} | {best_ratio} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    chains = build_chains(args.game, args.chains)
    # Warm up every chain (imports, first reset, caches) outside the timed repeats.
    for measure in chains.values():
        measure(200, args.seed)
    samples: dict[str, list[float]] = {name: [] for name in chains}
    for repeat in range(args.repeats):
        for name, measure in chains.items():
            samples[name].append(measure(args.steps, args.seed + repeat))
    limit_name = "emulator limit (env.step)"
    limit = statistics.median(samples[limit_name]) if limit_name in samples else None
    best_limit = max(samples[limit_name]) if limit_name in samples else None
    result = {
        "benchmark": "wrappers",
        "game": args.game,
        "steps": args.steps,
        "repeats": args.repeats,
        "frame_skip": FRAME_SKIP,
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
        "chains": {
            name: {
                "median": statistics.median(values),
                "repeats": values,
                "best": max(values),
                "ratio_to_emulator_limit": None if limit is None else statistics.median(values) / limit,
                "best_ratio_to_emulator_limit": None if best_limit is None else max(values) / best_limit,
            }
            for name, values in samples.items()
        },
    }
    markdown = render_markdown(result)
    print(markdown)
    if not args.no_write:
        from benchmarks.report import write_result_files

        write_result_files(args.output_dir / f"wrappers_{args.game.lower()}", result, markdown)
    return result


if __name__ == "__main__":
    main()
