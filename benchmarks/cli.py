"""``agents-zoo bench``: run a sweep config (ours vs the reference library) and print the report.

``agents-zoo bench`` (src/agents_zoo/cli.py) calls ``add_subcommand`` and ``run``; ``python -m
benchmarks.cli --config quick`` does the same without it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import config as config_module

DEFAULT_OUTPUT_ROOT = Path("bench-results")

DESCRIPTION = """\
Run our agents and the reference implementations (stable-baselines3 for PPO/A2C/DQN, installed
here by the [bench] extra; imitation 1.0.1 for GAIL, in a virtualenv of its own that the first
GAIL run builds under ~/.cache/agents-zoo, since it needs gymnasium 0.29 and SB3 2.2.1) side by
side: same env ids, hyperparameters (one config translated into both libraries' arguments:
--show-mapping) and seeds; every run in its own process, single-threaded (the default
protocol) or, where the config says "protocol": "whole-machine", alone on all cores with each
library's recommended parallelism. Results are appended as JSON lines to OUTPUT/runs.jsonl as
runs finish; running the same command again skips finished runs, so an interrupted sweep loses
nothing. The report (OUTPUT/report.md, learning-curve PNGs) is printed at the end."""

EPILOG = """\
examples:
  agents-zoo bench --config quick                     # ~2 min: PPO CartPole, ours vs SB3, 2 seeds
  agents-zoo bench --config cartpole --workers 2
  agents-zoo bench --config cartpole --models ~/az-models  # keep the trained models too
  agents-zoo bench --evaluate-models ~/az-models --episodes 100  # and evaluate them again, longer
  agents-zoo bench --config my_sweep.json --executor ray --address auto
  agents-zoo bench --config quick --report-only       # re-make the report from finished runs
  agents-zoo bench --list-configs
  agents-zoo bench --headline --write                 # re-make README's headline table from the results
shipped configs: {names}"""


def add_subcommand(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    try:
        names = ", ".join(config_module.shipped_config_names())
    except (FileNotFoundError, OSError):
        names = "(none found)"
    parser = subparsers.add_parser("bench", help="run ours and the reference libraries side by side and report",
                                   description=DESCRIPTION, epilog=EPILOG.format(names=names),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="NAME_OR_FILE",
                        help="a shipped config name (e.g. quick) or a path to a JSON sweep config")
    parser.add_argument("--output", metavar="DIR", type=Path,
                        help=f"results folder (default: {DEFAULT_OUTPUT_ROOT}/<config name>)")
    parser.add_argument("--models", metavar="DIR", type=Path,
                        help="also keep each trained run's policy in DIR/<run>/ with the run's spec.json: ours "
                             "as agent.zip (agents-zoo evaluate DIR/<run>/agent.zip), SB3's and imitation's "
                             "generator as model.zip (+ vecnormalize.pkl where observations are normalized); "
                             "no replay buffers. Models are not results: keep DIR out of the repository")
    parser.add_argument("--evaluate-models", metavar="DIR", type=Path,
                        help="evaluate each policy kept in DIR (by --models) again for --episodes episodes on "
                             "its run's env and evaluation seed, append them to DIR/evaluations.jsonl (a run "
                             "evaluated there with as many episodes is not played again), print each run's "
                             "mean and standard error and each library's IQM, and exit (SB3's files "
                             "unpickle: only folders your sweeps wrote)")
    parser.add_argument("--episodes", type=int, metavar="N",
                        help="with --evaluate-models: episodes per policy (default 100)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="single-thread runs at the same time (default 1; each uses one thread; they "
                             "start seed by seed, every library's run of a seed together, so the libraries "
                             "share the machine alike); whole-machine runs always run one at a time, after them")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local process pool (default) or Ray")
    parser.add_argument("--address", metavar="ADDRESS",
                        help="Ray cluster address (e.g. auto, ray://host:10001); omitted: start a local Ray instance")
    parser.add_argument("--reps", type=int, default=2000, metavar="N",
                        help="bootstrap resamples for the intervals (default 2000)")
    parser.add_argument("--report-only", action="store_true", help="do not run anything; report the finished runs")
    parser.add_argument("--no-plots", action="store_true", help="skip the learning-curve PNGs")
    parser.add_argument("--dry-run", action="store_true", help="validate the config and list the runs, run nothing")
    parser.add_argument("--list-configs", action="store_true", help="list the shipped configs and exit")
    parser.add_argument("--headline", action="store_true",
                        help="print the README's headline table, made from benchmarks/results/*/runs.jsonl, and exit")
    parser.add_argument("--write", action="store_true", help="with --headline: rewrite the table in README.md")
    parser.add_argument("--show-mapping", action="store_true",
                        help="print the table mapping config hyperparameters to each library's arguments and exit")
    return parser


def run(args: argparse.Namespace) -> int:
    from benchmarks import harness, report, translate

    if args.list_configs:
        for name in config_module.shipped_config_names():
            sweep = config_module.load_config(name, check_envs=False)
            print(f"{name:12s} {len(sweep.runs):4d} runs  {sweep.description}")
        return 0
    if args.write and not args.headline:
        print("agents-zoo bench: error: --write goes with --headline", file=sys.stderr)
        return 2
    if args.episodes is not None and args.evaluate_models is None:
        print("agents-zoo bench: error: --episodes goes with --evaluate-models", file=sys.stderr)
        return 2
    if args.evaluate_models is not None:
        return evaluate_models(args.evaluate_models, 100 if args.episodes is None else args.episodes)
    if args.headline:
        from benchmarks import headline

        if args.write:
            headline.write_readme()
            print(f"rewrote the headline table in {headline.README}")
        else:
            print(headline.headline_table())
        return 0
    if args.show_mapping:
        from benchmarks import reference_envs

        print(translate.mapping_table_markdown())
        print("\nWhere each library runs:")
        for library in config_module.LIBRARIES:
            print(f"- {library}: {reference_envs.describe(library)}")
        return 0
    if not args.config:
        print("agents-zoo bench: error: --config NAME_OR_FILE is required "
              f"(shipped: {', '.join(config_module.shipped_config_names())})", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"agents-zoo bench: error: --workers must be a positive int, got {args.workers}", file=sys.stderr)
        return 2
    if args.reps < 100:
        print(f"agents-zoo bench: error: --reps must be at least 100 for a 95% interval, got {args.reps}", file=sys.stderr)
        return 2
    if args.address and args.executor != "ray":
        print(f"agents-zoo bench: error: --address {args.address!r} needs --executor ray", file=sys.stderr)
        return 2
    try:
        sweep = config_module.load_config(args.config)
    except config_module.ConfigError as exc:
        print(f"agents-zoo bench: error: {exc}", file=sys.stderr)
        return 2
    output = args.output or DEFAULT_OUTPUT_ROOT / sweep.name
    if args.models is not None and (args.report_only or args.dry_run):
        print("agents-zoo bench: error: --models keeps the models of the runs a sweep trains; "
              f"--{'report-only' if args.report_only else 'dry-run'} trains none", file=sys.stderr)
        return 2
    if args.models is not None and args.models.exists() and not args.models.is_dir():
        print(f"agents-zoo bench: error: --models {str(args.models)!r} is a file; expected a folder "
              "(made if missing)", file=sys.stderr)
        return 2
    if args.dry_run:
        for spec in sweep.runs:
            print(f"{spec.label:60s} budget {spec.budget:>10,}  key {spec.hyperparameter_hash}")
        print(f"{len(sweep.runs)} runs; results would go to {output / harness.RESULTS_FILE}")
        return 0
    failed = []
    if not args.report_only:
        try:
            outcome = harness.run_sweep(sweep, output, executor=args.executor, workers=args.workers,
                                        address=args.address, log=lambda line: print(line, flush=True),
                                        models=args.models)
        except harness.SweepLockedError as exc:
            print(f"agents-zoo bench: error: {exc}", file=sys.stderr)
            return 2
        failed = outcome.failed
    records = harness.load_records(output / harness.RESULTS_FILE)
    if not records:
        print(f"agents-zoo bench: no finished runs in {output / harness.RESULTS_FILE}", file=sys.stderr)
        return 1
    print()
    evaluations = report.load_evaluations(output / report.EVALUATIONS_FILE)
    print(report.build_report(sweep, records, output, reps=args.reps, plots=not args.no_plots,
                              evaluations=evaluations))
    print(f"\nreport: {output / report.REPORT_FILE}; results: {output / harness.RESULTS_FILE}")
    if failed:
        print(f"{len(failed)} run(s) failed; see {output / harness.FAILURES_FILE}. Re-run to retry them.",
              file=sys.stderr)
        return 1
    return 0


def evaluate_models(folder: Path, episodes: int) -> int:
    from benchmarks import kept_models

    if episodes < 1:
        print(f"agents-zoo bench: error: --episodes must be a positive int, got {episodes}", file=sys.stderr)
        return 2
    try:
        records = kept_models.evaluate_kept_models(folder, episodes, log=lambda line: print(line, flush=True))
    except FileNotFoundError as exc:
        print(f"agents-zoo bench: error: {exc}", file=sys.stderr)
        return 2
    print()
    print(kept_models.evaluations_table(records))
    print(f"\nevaluations in {folder / kept_models.EVALUATIONS_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agents-zoo")
    add_subcommand(parser.add_subparsers(dest="command"))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "bench":
        argv = ["bench", *argv]
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
