"""Markdown tables and learning-curve plots from the result records of one sweep."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np

from agents_zoo.core.serialization import atomic_write_text
from benchmarks import stats
from benchmarks.config import REFERENCE_LIBRARY, SweepConfig, canonical_json

REPORT_FILE = "report.md"
LIBRARY_LABELS = {"ours": "ours (agents-zoo, TF)", "sb3": "SB3 2.2.1 (torch)", "imitation": "imitation 1.0.1 (torch)"}


def _group(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for record in records:
        key = record["key"]
        groups[(key["algo"], key["env"])][key["library"]].append(record)
    for libraries in groups.values():
        for runs in libraries.values():
            runs.sort(key=lambda r: r["key"]["seed"])
    return groups


def _finals(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["final"]["mean"] for r in runs])


def _speeds(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["timing"]["steps_per_second"] for r in runs if r["timing"].get("steps_per_second")])


def _target_return(runs_by_library: dict[str, list[dict[str, Any]]], algo: str) -> tuple[float | None, str]:
    for runs in runs_by_library.values():
        target = runs[0]["spec"].get("target_return")
        if target is not None:
            return float(target), "target_return of the config"
    reference = runs_by_library.get(REFERENCE_LIBRARY.get(algo, ""), [])
    if reference:
        return float(np.mean(_finals(reference))), "mean of the reference library"
    return None, "no target"


def build_report(config: SweepConfig, records: list[dict[str, Any]], output: str | Path,
                 reps: int = stats.DEFAULT_REPS, plots: bool = True) -> str:
    """Write ``report.md`` and one PNG per (algorithm, env) into ``output``; return the markdown."""
    output = Path(output)
    wanted = {spec.key_text for spec in config.runs}
    records = [r for r in records if canonical_json(r["key"]) in wanted]
    groups = _group(records)
    baselines = {env: _finals(libs["ours"]) for (algo, env), libs in groups.items() if algo == "random"}
    lines = [f"# Benchmark `{config.name}`", "", config.description, "",
             f"{len(records)} of {len(config.runs)} runs finished. Every run had its own process with one thread "
             "(OMP/MKL/TF intra- and inter-op pools = 1, `torch.set_num_threads(1)`). Returns are the mean "
             "undiscounted return of the final deterministic evaluation of each run; intervals are 95% "
             f"stratified-bootstrap intervals over runs (rliable, {reps} resamples). Steps/s counts training "
             "time only (evaluation excluded).", ""]
    versions = _versions(records)
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    for (algo, env), libraries in sorted(groups.items()):
        if algo == "random":
            continue
        lines += _group_section(algo, env, libraries, baselines.get(env), reps)
        if plots:
            name = plot_curves(algo, env, libraries, output, reps)
            lines += [f"![{algo} on {env}]({name})", ""]
    if baselines:
        lines += ["### Random agent (normalization baseline)", "", "| env | runs | return mean +- std |", "|---|---|---|"]
        for env, finals in sorted(baselines.items()):
            lines.append(f"| {env} | {len(finals)} | {finals.mean():.1f} +- {finals.std():.1f} |")
        lines.append("")
    text = "\n".join(lines)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / REPORT_FILE, text + "\n")
    return text


def _versions(records: list[dict[str, Any]]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for record in records:
        versions.update(record.get("versions", {}))
    return versions


def _group_section(algo: str, env: str, libraries: dict[str, list[dict[str, Any]]], random_finals: np.ndarray | None,
                   reps: int) -> list[str]:
    first = next(iter(libraries.values()))[0]
    budget = first["key"]["budget"]
    lines = [f"## {algo.upper()} on {env} ({budget:,} steps)", ""]
    target, target_source = _target_return(libraries, algo)
    normalizable = random_finals is not None and target is not None and target != float(np.mean(random_finals))
    header = "| library | runs | return mean +- std | IQM [95% CI] |"
    header += " normalized IQM [95% CI] |" if normalizable else ""
    header += " steps/s mean +- std | train time (s) | peak memory (MiB) |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for library in sorted(libraries, key=lambda name: (name != "ours", name)):
        runs = libraries[library]
        finals = _finals(runs)
        speeds = _speeds(runs)
        row = f"| {LIBRARY_LABELS.get(library, library)} | {len(runs)} | {finals.mean():.1f} +- {finals.std():.1f} |"
        row += f" {stats.iqm_interval(finals, reps).format()} |"
        if normalizable:
            normalized = stats.normalize(finals, float(np.mean(random_finals)), target)
            row += f" {stats.iqm_interval(normalized, reps).format(2)} |"
        train = np.array([r["timing"]["train_time_s"] for r in runs])
        memory = np.array([r["timing"]["peak_memory_mib"] for r in runs])
        speed_text = f"{speeds.mean():,.0f} +- {speeds.std():,.0f}" if speeds.size else "n/a"
        row += f" {speed_text} | {train.mean():.1f} | {memory.mean():.0f} |"
        lines.append(row)
    lines.append("")
    reference = REFERENCE_LIBRARY.get(algo)
    if "ours" in libraries and reference in libraries:
        ours, theirs = libraries["ours"], libraries[reference]
        improvement = stats.probability_of_improvement(_finals(ours), _finals(theirs), reps)
        lines.append(f"- P(ours > {reference}) = {improvement.format(2)}")
        ours_speed, reference_speed = _speeds(ours), _speeds(theirs)
        if ours_speed.size and reference_speed.size:
            ratio = stats.ratio_of_means(ours_speed, reference_speed, reps)
            lines.append(f"- speed ratio ours / {reference} (steps/s) = {ratio.format(2)}")
    if normalizable:
        lines.append(f"- normalized score: 0 = random agent ({float(np.mean(random_finals)):.1f}), "
                     f"1 = {target:.1f} ({target_source})")
    hyperparameters = first["spec"]["hyperparameters"]
    if hyperparameters:
        lines.append("- hyperparameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(hyperparameters.items())))
    lines.append("")
    return lines


def plot_curves(algo: str, env: str, libraries: dict[str, list[dict[str, Any]]], output: Path, reps: int) -> str:
    """Learning curves, IQM over runs with 95% bands, against env steps and against training time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (by_steps, by_time) = pyplot.subplots(1, 2, figsize=(11, 4))
    for library in sorted(libraries, key=lambda name: (name != "ours", name)):
        runs = libraries[library]
        length = min(len(r["curve"]["mean"]) for r in runs)
        if length == 0:
            continue
        curves = np.array([r["curve"]["mean"][:length] for r in runs])
        steps = np.array(runs[0]["curve"]["steps"][:length])
        # Runs reach an evaluation point at different times: the x position is their mean time.
        times = np.mean([r["timing"]["curve_train_time_s"][:length] for r in runs], axis=0)
        centre, band = stats.iqm_curve(curves, reps)
        label = LIBRARY_LABELS.get(library, library)
        for axis, x in ((by_steps, steps), (by_time, times)):
            axis.plot(x, centre, label=label)
            axis.fill_between(x, band[0], band[1], alpha=0.25)
    by_steps.set_xlabel("env steps")
    by_time.set_xlabel("training time (s, evaluation excluded)")
    for axis in (by_steps, by_time):
        axis.set_ylabel("evaluation return (IQM, 95% CI)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"{algo.upper()} on {env}")
    figure.tight_layout()
    name = f"curves_{algo}_{env.replace('/', '_')}.png"
    figure.savefig(output / name, dpi=100)
    pyplot.close(figure)
    return name
