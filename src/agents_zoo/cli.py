"""The ``agents-zoo`` command line: list, train, evaluate, and the bench/expert/generative tools."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from agents_zoo.core.cli_args import check_output_path, non_negative_int, parse_key_values, positive_int  # noqa: E402
from agents_zoo.core.quiet_startup import import_tensorflow_quietly  # noqa: E402

# Subcommands that live in other modules, imported only when used so `agents-zoo list` and
# `--help` do not pay for TensorFlow, SB3 or Ray imports.
EXTERNAL_COMMANDS = {
    "bench": ("benchmarks.cli", "run our agents and the reference libraries side by side and report"),
    "expert": ("agents_zoo.expert_cli", "train or load an expert and record demonstrations (.npz)"),
    "generative": ("generative.cli", "train generative models (GAN, VAE, CycleGAN, DB-VAE) on env frames"),
}
# External commands that import TensorFlow in this process (bench validates configs against our agents).
TENSORFLOW_COMMANDS = ("bench", "expert", "generative")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agents-zoo",
        description="TensorFlow 2 RL agents as Gymnasium plugins: train, evaluate and benchmark them.",
        epilog="Examples:\n  agents-zoo list\n  agents-zoo train ppo CartPole-v1 --steps 100000 --n-envs 8 --save ppo.zip\n"
               "  agents-zoo evaluate ppo.zip --episodes 10\n  agents-zoo bench --config quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    list_parser = commands.add_parser("list", help="show installed agents (with their distribution) and our env ids")
    list_parser.add_argument("--what", choices=("all", "agents", "envs"), default="all", help="what to list (default: all)")

    train = commands.add_parser(
        "train", help="train an agent on an environment",
        description="Train agent ALGO on ENV_ID. Settings of the agent's config go in --config key=value; "
                    "`agents-zoo train ALGO --list-config` shows them with defaults.",
    )
    train.add_argument("algo", help="agent name from `agents-zoo list` (e.g. ppo, a2c, dqn, random)")
    train.add_argument("env_id", nargs="?", help="gymnasium env id (e.g. CartPole-v1, agents_zoo/Pong-dqn-v0)")
    train.add_argument("--steps", type=positive_int, default=100_000, help="env steps over all envs (default 100000)")
    train.add_argument("--seed", type=non_negative_int, default=None, help="seed for envs, networks and sampling")
    train.add_argument("--n-envs", type=positive_int, default=None, help="envs stepped together (overrides config n_envs)")
    train.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                       help="agent settings, e.g. learning_rate=3e-4 policy_hidden_sizes=[64,64]")
    train.add_argument("--save", type=Path, default=None, help="where to write the trained model (.zip)")
    train.add_argument("--checkpoint-every", type=positive_int, default=None,
                       help="write a resumable checkpoint to --save every N env steps (atomic)")
    train.add_argument("--checkpoint-replay-buffer", action="store_true",
                       help="store the replay buffer in checkpoints too (off-policy agents: exact resume, bigger file)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint at --save if it exists, up to --steps in total")
    train.add_argument("--eval-episodes", type=non_negative_int, default=10,
                       help="episodes of deterministic evaluation after training (0 to skip)")
    train.add_argument("--log-dir", type=Path, default=None, help="write progress.csv and TensorBoard logs here")
    train.add_argument("--eval-every", type=non_negative_int, default=None,
                       help="evaluate (--eval-episodes, deterministic) every N env steps during training, logged as "
                            "eval/mean_reward (default: off; gail: every 1/20 of --steps, for its return picture)")
    train.add_argument("--plots", type=Path, default=None,
                       help="gail: folder for its two training pictures, gail_return.png and gail_discriminator.png "
                            "(default: --log-dir, else the folder of --save, else the current folder)")
    train.add_argument("--deterministic-ops", action="store_true", help="bitwise-repeatable TF ops (slower)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--list-config", action="store_true", help="print the agent's settings with defaults and exit")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model")
    evaluate.add_argument("model_path", type=Path, help="a model saved by `train --save` or agent.save()")
    evaluate.add_argument("--episodes", type=positive_int, default=10, help="episodes to run (default 10)")
    evaluate.add_argument("--env", dest="env_id", default=None, help="env id (default: the one the model was trained on)")
    evaluate.add_argument("--seed", type=non_negative_int, default=None, help="seed of the evaluation envs")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy/mean action")
    evaluate.add_argument("--render", action="store_true", help="show the episodes in a window (render_mode=human)")

    for name, (_, help_text) in EXTERNAL_COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False).add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in EXTERNAL_COMMANDS:
        return _run_external(argv)
    args = build_parser().parse_args(argv)
    quiet_known_env_warnings()
    import_tensorflow_quietly()  # after parsing: --help stays fast
    commands = {"list": cmd_list, "train": cmd_train, "evaluate": cmd_evaluate}
    return run_with_error_boundary(args.command, lambda: commands[args.command](args))


def quiet_known_env_warnings() -> None:
    """seals declares float64 Box bounds, and gymnasium warns about casting them to float32 at
    every env it builds (four lines each time); the bounds are exact in float32 and the warning
    says nothing the user can act on."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*Box (low|high)'s precision lowered by casting to float32")


# What a user's input can cause: a bad value or file (ValueError: our config, archive, env-id and
# space errors), a path that cannot be read or written (OSError), a missing package (ImportError),
# an impossible request (RuntimeError, e.g. GAIL without demonstrations), a file declaring more
# memory than there is (MemoryError), numbers out of range (ArithmeticError), TensorFlow's errors
# for the same causes. Anything else is a bug and keeps its traceback.
def _expected_errors() -> tuple[type[BaseException], ...]:
    import zipfile

    errors: list[type[BaseException]] = [ValueError, TypeError, KeyError, OSError, ImportError, RuntimeError,
                                         MemoryError, ArithmeticError, zipfile.BadZipFile]
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        errors.append(tensorflow.errors.OpError)
    return tuple(errors)


def run_with_error_boundary(command: str, action: Any) -> int:
    """Run ``action()``; an expected failure becomes one line on stderr and exit status 2.

    ``AGENTS_ZOO_TRACEBACK=1`` shows the traceback instead, for bug reports.
    """
    try:
        return int(action() or 0)
    except _expected_errors() as exc:
        if os.environ.get("AGENTS_ZOO_TRACEBACK"):
            raise
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, KeyError) and exc.args:
            message = str(exc.args[0])
        if isinstance(exc, (MemoryError, RecursionError)):
            message = f"{type(exc).__name__}: the input asks for more than this machine can hold ({message})"
        elif not isinstance(exc, ValueError):
            message = f"{type(exc).__name__}: {message}"
        print(f"agents-zoo {command}: error: {message}", file=sys.stderr)
        return 2


def _run_external(argv: list[str]) -> int:
    module_name, help_text = EXTERNAL_COMMANDS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"agents-zoo {argv[0]}: unavailable ({exc}); install the extras it needs, "
              f"e.g. pip install 'agents-zoo[bench]'", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="agents-zoo")
    module.add_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    quiet_known_env_warnings()
    if argv[0] in TENSORFLOW_COMMANDS:
        import_tensorflow_quietly()
    command = " ".join(argv[:2]) if len(argv) > 1 and not argv[1].startswith("-") else argv[0]
    return run_with_error_boundary(command, lambda: module.run(args))


# ---------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    from agents_zoo.registry import agent_specs

    if args.what in ("all", "agents"):
        print("Agents (name, distribution, entry point):")
        for name, spec in sorted(agent_specs().items()):
            status = "" if spec.factory is not None else f"  [failed to load: {spec.error}]"
            print(f"  {name:<14} {spec.distribution:<20} {spec.entry_point}{status}")
    if args.what in ("all", "envs"):
        print("Environment ids registered by agents-zoo (gym.make works with each):")
        try:
            from wrappers.registration import list_env_ids

            ids = list_env_ids()
        except ImportError as exc:
            ids = []
            print(f"  (env registration unavailable: {exc})")
        for env_id in ids:
            print(f"  {env_id}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import agents_zoo
    from agents_zoo.core.base import BaseAgent

    agent_cls = agents_zoo.get_agent_class(args.algo)
    if args.list_config:
        for name, doc, default in agent_cls.config_class.describe():
            print(f"  {name:<28} {default!r:<18} {doc}")
        return 0
    if args.env_id is None:
        raise ValueError("train needs an ENV_ID, e.g. `agents-zoo train ppo CartPole-v1`")
    overrides = parse_config_overrides(agent_cls.config_class, args.config)
    if args.n_envs is not None:
        overrides["n_envs"] = args.n_envs
    if (args.resume or args.checkpoint_every) and args.save is None:
        raise ValueError("--resume and --checkpoint-every need --save PATH for the checkpoint")
    if args.save is not None:
        check_output_path(args.save, "--save")  # before training: a bad path must not cost the run
    if args.log_dir is not None:
        check_output_path(args.log_dir, "--log-dir", folder=True)
    plots = training_plots_folder(agent_cls, args)
    evaluations = evaluation_callback(agent_cls, args)
    if args.resume and args.save.exists():
        agent: BaseAgent = agent_cls.load(args.save, env=args.env_id)
        check_resume_settings(agent, overrides)
        remaining = args.steps - agent.num_timesteps
        print(f"resuming {args.algo} from {args.save} at step {agent.num_timesteps} of {args.steps}")
        replay = getattr(agent, "replay", None)
        if replay is not None and len(replay) == 0 and agent.num_timesteps > 0:
            print(f"note: {args.save} holds no replay buffer (it was saved without --checkpoint-replay-buffer): "
                  "training continues with an empty buffer and refills it", file=sys.stderr)
        if remaining > 0:
            agent.learn(remaining, callback=evaluations, progress_bar=not args.no_progress, reset_num_timesteps=False,
                        checkpoint_every=args.checkpoint_every, checkpoint_path=args.save,
                        checkpoint_replay_buffer=args.checkpoint_replay_buffer)
    else:
        agent = agent_cls(args.env_id, seed=args.seed, log_dir=args.log_dir,
                          deterministic_ops=args.deterministic_ops, **overrides)
        agent.learn(args.steps, callback=evaluations, progress_bar=not args.no_progress,
                    checkpoint_every=args.checkpoint_every, checkpoint_path=args.save,
                    checkpoint_replay_buffer=args.checkpoint_replay_buffer)
    note_whole_iterations(agent, args.steps)
    if args.save is not None:
        save_or_rescue(agent, args.save, args.checkpoint_replay_buffer)
        print(f"saved {args.algo} to {args.save}")
    if plots is not None:
        written = agent.save_training_plots(plots, evaluations.curve if evaluations is not None else ())
        print(f"wrote {', '.join(str(path) for path in written)}")
    if args.eval_episodes:
        result = agent.evaluate(args.eval_episodes)
        print(f"evaluation over {args.eval_episodes} episodes: {result.mean:.2f} +/- {result.std:.2f}")
    return 0


def training_plots_folder(agent_cls: Any, args: argparse.Namespace) -> Path | None:
    """Where an agent that draws its training (GAIL's ``save_training_plots``) puts the pictures; None for others."""
    if not hasattr(agent_cls, "save_training_plots"):
        if args.plots is not None:
            raise ValueError(f"--plots draws GAIL's training; {args.algo} has no training pictures")
        return None
    folder = args.plots or args.log_dir or (args.save.parent if args.save is not None else Path("."))
    return check_output_path(folder, "--plots", folder=True)


def evaluation_callback(agent_cls: Any, args: argparse.Namespace) -> Any:
    """The EvalCallback of --eval-every (GAIL's default: 20 evaluations over --steps), or None."""
    every = args.eval_every
    if every is None and hasattr(agent_cls, "save_training_plots"):
        every = max(args.steps // 20, 1)
    if not every or not args.eval_episodes:
        return None
    from agents_zoo.core.callbacks import EvalCallback

    return EvalCallback(every, n_eval_episodes=args.eval_episodes)


def check_resume_settings(agent: Any, overrides: dict[str, Any]) -> None:
    """``--resume`` continues the checkpoint's settings; a --config/--n-envs that differs is refused.

    Every setting is compared, nested ones key by key (GAIL's ``learner_kwargs``): a key given
    flat may land in one of them."""
    saved = agent.config.to_dict()
    asked = type(agent.config).from_dict({**saved, **overrides}).to_dict()
    changed = [f"{key}={value!r} (checkpoint: {before!r})" for key, value, before in _differences(asked, saved)]
    if changed:
        raise ValueError(f"--resume continues the checkpoint's settings, but these differ: {', '.join(changed)}; "
                         "drop them, or start a new run with another --save")


def _differences(asked: dict[str, Any], saved: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, asked value, saved value) for every setting that differs, in key order."""
    rows = []
    for key in sorted(set(asked) | set(saved)):
        value, before = asked.get(key), saved.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            rows.extend(_differences(value, before, f"{prefix}{key}."))
        elif value != before:
            rows.append((f"{prefix}{key}", value, before))
    return rows


def note_whole_iterations(agent: Any, steps: int) -> None:
    """Say why training went past ``--steps``: agents train in whole iterations (a rollout of
    n_steps x n_envs for PPO), and the last one ends past a budget that is not a multiple of it.
    Said after training, so that an error in it stays the one line printed."""
    if agent.num_timesteps > steps:
        unit = agent.steps_per_iteration
        print(f"note: {agent.name} trained to step {agent.num_timesteps:,}, past --steps {steps:,}: it trains in whole "
              f"iterations of {unit:,} env steps, as SB3 does; a multiple of {unit:,} ends on it", file=sys.stderr)


def save_or_rescue(agent: Any, path: Path, include_replay_buffer: bool) -> None:
    """Save to ``path``; if that fails after training (disk filled up, folder removed), save the
    model to the temporary folder instead and say where, so the training is never lost."""
    try:
        agent.save(path, include_replay_buffer=include_replay_buffer)
    except OSError as exc:
        import tempfile

        rescue = Path(tempfile.gettempdir()) / f"agents-zoo-rescued-{agent.name}-{os.getpid()}.zip"
        agent.save(rescue, include_replay_buffer=include_replay_buffer)
        raise OSError(f"could not write {str(path)!r} ({exc.strerror or exc}); the trained model was saved to "
                      f"{str(rescue)!r} instead") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    import agents_zoo

    if args.render and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                                  or os.environ.get("WAYLAND_DISPLAY")):
        # SDL (pygame) crashes the process without a display instead of raising.
        raise ValueError("--render needs a display, but neither DISPLAY nor WAYLAND_DISPLAY is set")
    from agents_zoo.core.serialization import errors_name_the_file

    with errors_name_the_file(args.model_path):
        agent = agents_zoo.load(args.model_path)
    result = agent.evaluate(args.episodes, deterministic=not args.stochastic, env=args.env_id,
                            seed=args.seed, render=args.render)
    print(f"{agent.name} on {args.env_id or agent.env_id}: {result.mean:.2f} +/- {result.std:.2f} "
          f"over {args.episodes} episodes (mean length {result.lengths.mean():.1f})")
    return 0


def parse_config_overrides(config_class: Any, pairs: Sequence[str]) -> dict[str, Any]:
    return parse_key_values(pairs, config_class.parse_cli_value)


if __name__ == "__main__":
    sys.exit(main())
