"""The README's headline table, made from the committed harness results and nothing else.

    agents-zoo bench --headline            # print the table
    agents-zoo bench --headline --write    # rewrite it in README.md, between its markers

Every ``benchmarks/results/<sweep>/runs.jsonl`` gives one row per (algorithm, env, budget) and
per configuration of ours (a variant is its own row) and per timing protocol (a whole-machine run's row says so): our CPU-time steps/s and IQM return, the
reference library's (with its version, read from the records; for imitation runs also the IQM as a
fraction of the expert's return, 0 being the sweep's random agent), and the ratio of CPU-time
steps/s (process CPU seconds, so a machine shared with other jobs does not skew it). Whole-machine
runs step envs in worker processes whose CPU time the run does not count: their rows give
wall-clock steps/s and its ratio instead, and say so. Each row
names the sweep folder it came from, so no figure in the README can drift from its run.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import stats
from benchmarks.config import REFERENCE_LIBRARY
from benchmarks.harness import RESULTS_FILE, load_records
from benchmarks.config import SINGLE_THREAD, WHOLE_MACHINE
from benchmarks.report import LIBRARY_DISTRIBUTION, library_of, protocol_of, run_label, run_speeds, same_machine_runs

RESULTS_ROOT = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- headline-table -->", "<!-- /headline-table -->"
CPU_SPEED = "cpu_steps_per_second"
# The speed each protocol's rows compare, and how the row names it.
SPEED = {SINGLE_THREAD: (CPU_SPEED, "CPU steps/s", "x"),
         WHOLE_MACHINE: ("steps_per_second", "wall-clock steps/s", "x wall clock")}
HEADER = ["| what | ours | reference | CPU steps/s ratio | results |", "|---|---|---|---|---|"]


def _summary(runs: list[dict[str, Any]], target: float | None, protocol: str = SINGLE_THREAD,
             random_return: float | None = None) -> str:
    finals = np.array([r["final"]["mean"] for r in runs])
    field, unit, _ = SPEED[protocol]
    speeds = run_speeds(runs, field)
    parts = [f"{speeds.mean():,.0f} {unit}" if speeds.size else "steps/s n/a", f"IQM {stats.iqm(finals):.1f}"]
    expert = runs[0].get("expert_return")
    if expert is not None and random_return is not None and expert != random_return:
        # imitation: the IQM as a fraction of the expert's return, 0 = the random agent's
        parts.append(f"{(stats.iqm(finals) - random_return) / (expert - random_return):.2f} of the expert")
    if target is not None and target > 0:  # "solved": within 5% of the target return
        parts.append(f"{int(np.sum(finals >= 0.95 * target))}/{len(runs)} seeds >= {0.95 * target:g}")
    return ", ".join(parts)


def _version(runs: list[dict[str, Any]], library: str) -> str:
    distribution = LIBRARY_DISTRIBUTION.get(library, (library, ""))[0]
    return runs[0].get("versions", {}).get(distribution, "?")


# Settings that change what a row measures, named in its "what" column when a run turns them on.
NOTABLE_SETTINGS = {"use_sde": "gSDE", "compute_dtype": "bf16"}


def _notable(runs: list[dict[str, Any]]) -> str:
    hyperparameters = runs[0]["spec"].get("hyperparameters", {}) if runs else {}
    on = [name for setting, name in NOTABLE_SETTINGS.items() if hyperparameters.get(setting) not in (None, False, "float32")]
    return f" with {', '.join(on)}" if on else ""


def headline_rows(results_root: Path = RESULTS_ROOT, reps: int = 1000) -> list[str]:
    from benchmarks.config import ConfigError, load_config

    rows = []
    for results in sorted(results_root.glob(f"*/{RESULTS_FILE}")):
        try:  # the folder is named after its sweep config; smoke sweeps opt out
            if not load_config(results.parent.name, check_envs=False).headline:
                continue
        except ConfigError:
            pass
        groups: dict[tuple[str, str, int, str], dict[str, list[dict[str, Any]]]] = collections.defaultdict(
            lambda: collections.defaultdict(list))
        random_finals: dict[str, list[float]] = collections.defaultdict(list)
        for record in load_records(results):
            key = record["key"]
            if key["algo"] == "random":
                random_finals[key["env"]].append(record["final"]["mean"])
            else:
                groups[(key["algo"], key["env"], key["budget"], protocol_of(key))][run_label(key)].append(record)
        for (algo, env, budget, protocol), by_label in sorted(groups.items()):
            reference = REFERENCE_LIBRARY.get(algo, "")
            theirs = by_label.get(reference, [])
            target = next((r["spec"].get("target_return") for runs in by_label.values() for r in runs), None)
            seeds = len(next(iter(by_label.values())))
            for label in sorted(label for label in by_label if library_of(label) == "ours"):
                ours = by_label[label]
                variant = label[len("ours"):]
                what = (f"{algo.upper()}{variant} {env}{_notable(ours)}, {budget:,} steps, "
                        f"{seeds} seed{'s' if seeds > 1 else ''}")
                if protocol != SINGLE_THREAD:
                    what += f", {protocol}"
                ratio = "n/a"
                field, _, times = SPEED[protocol]
                timed_ours, timed_theirs, _ = same_machine_runs(label, reference, ours, theirs)
                ours_speed, theirs_speed = run_speeds(timed_ours, field), run_speeds(timed_theirs, field)
                if ours_speed.size and theirs_speed.size:
                    ratio = stats.ratio_of_means(ours_speed, theirs_speed, reps).format(2) + times
                elif theirs and not timed_theirs:
                    ratio = "n/a (runs on different machines)"
                random_return = float(np.mean(random_finals[env])) if random_finals[env] else None
                reference_text = (f"{reference} {_version(theirs, reference)}: "
                                  f"{_summary(theirs, target, protocol, random_return)}" if theirs else "not run")
                rows.append(f"| {what} | {_summary(ours, target, protocol, random_return)} | {reference_text} | {ratio} | "
                            f"`{results.parent.relative_to(results_root.parent.parent)}` |")
    return rows


def headline_table(results_root: Path = RESULTS_ROOT) -> str:
    return "\n".join([*HEADER, *headline_rows(results_root)])


def write_readme(readme: Path = README, results_root: Path = RESULTS_ROOT) -> None:
    from agents_zoo.core.serialization import atomic_write_text

    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block to rewrite")
    atomic_write_text(readme, pattern.sub(lambda _: f"{BEGIN}\n{headline_table(results_root)}\n{END}", text))
