"""``agents-zoo expert``: train or load an expert and record demonstrations for GAIL.

    agents-zoo expert train seals/CartPole-v0 --trainer ppo --steps 100000 --save expert.zip \\
        --demos demos.npz --episodes 60
    agents-zoo expert rollout expert.zip seals/CartPole-v0 --trainer ppo --episodes 60 --out demos.npz
    agents-zoo expert inspect demos.npz

``--trainer`` picks our PPO (``ppo``), sb3-contrib's TRPO (``trpo``, the expert trainer of the
GAIL paper) or SB3's PPO (``sb3-ppo``). Demonstrations are the classic GAIL ``.npz`` files
(see :mod:`agents_zoo.demonstrations`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agents_zoo.core.cli_args import check_output_path, non_negative_int, parse_key_values, positive_int
from agents_zoo.demonstrations import EXPERT_TRAINERS


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``expert`` command with its ``train``, ``rollout`` and ``inspect`` actions."""
    expert = subparsers.add_parser(
        "expert", help="train or load an expert and record demonstrations (.npz)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = expert.add_subparsers(dest="expert_command", metavar="ACTION")
    actions.required = True

    train = actions.add_parser("train", help="train an expert, save it, optionally record demonstrations")
    train.add_argument("env_id", help="gymnasium env id, e.g. seals/CartPole-v0, Pendulum-v1, HopperBulletEnv-v0")
    train.add_argument("--trainer", choices=EXPERT_TRAINERS, default="ppo",
                       help="ppo (ours), trpo (sb3-contrib, as in the GAIL paper) or sb3-ppo (default: ppo)")
    train.add_argument("--steps", type=positive_int, default=100_000, help="training env steps (default 100000)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of training (default 0)")
    train.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                       help="trainer settings (our PPO's config fields, or SB3 keyword arguments); values are JSON")
    train.add_argument("--save", type=Path, required=True, help="where to write the expert model (.zip)")
    _add_rollout_options(train, required=False)

    rollout = actions.add_parser("rollout", help="roll a saved expert out and save demonstrations")
    rollout.add_argument("expert_path", type=Path, help="an expert saved by `expert train --save`")
    rollout.add_argument("env_id", help="gymnasium env id to roll out on")
    rollout.add_argument("--trainer", choices=EXPERT_TRAINERS, default="ppo",
                         help="which library wrote the expert file (default: ppo, ours)")
    rollout.add_argument("--seed", type=non_negative_int, default=0, help="seed of the rollout envs (default 0)")
    _add_rollout_options(rollout, required=True)

    inspect = actions.add_parser("inspect", help="validate a demonstration file and print a summary")
    inspect.add_argument("path", type=Path, help="a demonstration .npz")
    return expert


def _add_rollout_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--out" if required else "--demos", dest="demos", type=Path, required=required,
                        help="where to write the demonstrations (.npz, classic GAIL layout)")
    parser.add_argument("--episodes", type=positive_int, default=60, help="episodes to record (default 60)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy/mean action")


def run(args: argparse.Namespace) -> int:
    """Run ``expert train|rollout|inspect``; return the exit status (2 on bad input)."""
    try:
        if args.expert_command == "train":
            return _train(args)
        if args.expert_command == "rollout":
            return _rollout(args)
        if args.expert_command == "inspect":
            return _inspect(args.path)
    except ImportError as exc:  # the reference libraries; agents_zoo.cli's boundary handles the rest
        print(f"agents-zoo expert {args.expert_command}: error: {exc}", file=sys.stderr)
        return 2
    raise ValueError(f"unknown expert action {args.expert_command!r}; expected train, rollout or inspect")


def _train(args: argparse.Namespace) -> int:
    from agents_zoo import demonstrations

    check_output_path(args.save, "--save")  # before training: a bad path must not cost the run
    if args.demos is not None:
        check_output_path(args.demos, "--demos")
    config = parse_key_values(args.config)
    model = demonstrations.train_expert(args.env_id, args.trainer, args.steps, args.seed, config)
    demonstrations.save_expert(model, args.save)
    print(f"saved {args.trainer} expert to {args.save}")
    if args.demos is not None:
        _record(model, args.env_id, args.episodes, args.seed, args.stochastic, args.demos)
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from agents_zoo import demonstrations

    check_output_path(args.demos, "--out")
    from agents_zoo.core.serialization import errors_name_the_file

    with errors_name_the_file(args.expert_path):
        model = demonstrations.load_expert(args.expert_path, args.trainer)
    _record(model, args.env_id, args.episodes, args.seed, args.stochastic, args.demos)
    return 0


def _record(model: Any, env_id: str, episodes: int, seed: int, stochastic: bool, path: Path) -> None:
    from agents_zoo import demonstrations

    demos = demonstrations.rollout(model, env_id, episodes, seed=seed, deterministic=not stochastic)
    demonstrations.save_demonstrations(path, demos)
    print(f"wrote {demos.n_episodes} episodes ({demos.n_transitions} transitions) to {path}: "
          f"return {demos.episode_returns.mean():.2f} +/- {demos.episode_returns.std():.2f}")


def _inspect(path: Path) -> int:
    from agents_zoo import demonstrations
    from agents_zoo.core.serialization import errors_name_the_file

    with errors_name_the_file(path, demonstrations.DemonstrationFileError):
        demos = demonstrations.load_demonstrations(path)
    print(json.dumps({
        "path": str(path), "episodes": demos.n_episodes, "transitions": demos.n_transitions,
        "obs_shape": list(demos.observations.shape), "acs_shape": list(demos.actions.shape),
        "acs_dtype": str(demos.actions.dtype), "fixed_horizon": demos.fixed_horizon,
        "lengths": [int(demos.lengths.min()), int(demos.lengths.max())],
        "return_mean": float(demos.episode_returns.mean()), "return_std": float(demos.episode_returns.std()),
    }, indent=2))
    return 0
