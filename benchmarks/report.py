"""Markdown tables and learning-curve plots from the result records of one sweep."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import numpy as np

from agents_zoo.core.serialization import atomic_write_text
from benchmarks import stats
from benchmarks.config import PROTOCOLS, REFERENCE_LIBRARY, SINGLE_THREAD, WHOLE_MACHINE, SweepConfig, canonical_json
from benchmarks.machine import machine_text

REPORT_FILE = "report.md"
# Longer evaluations of kept policies (``agents-zoo bench --evaluate-models``): written beside the
# models, and read from a results folder where they were copied, to add them to its report.
EVALUATIONS_FILE = "evaluations.jsonl"
# Besides the final evaluation, the mean of each run's last this many learning-curve points: a
# steadier end-of-training score where one evaluation is a few noisy episodes (Atari per-life
# returns) or the return swings from one evaluation to the next (an adversarial learner's).
LAST_EVALUATIONS = 5
# Imitation reports: the fraction of the expert's return from which a later drop counts as a collapse.
COLLAPSE_CHECK_FRACTION = 0.9
PROTOCOL_TEXT = {
    SINGLE_THREAD: "single-thread: every run had its own process with one thread (OMP/MKL/TF intra- and inter-op "
                   "pools = 1, `torch.set_num_threads(1)`, SB3's in-process `DummyVecEnv`); runs shared the machine",
    WHOLE_MACHINE: "whole-machine: each run had the machine to itself and used its {cores} core(s) as its library "
                     "advises: SB3 and imitation a `SubprocVecEnv` of n_envs processes and `torch.set_num_threads"
                     "({cores})`, ours TF intra- and inter-op pools of {cores} and, on our Atari ids, ale-py's C++ "
                     "`AtariVectorEnv` with a thread per core where installed (ale-py >= 0.12), its synchronous "
                     "vector env elsewhere",
}
# The distribution whose version names each library in the tables (read from the records).
LIBRARY_DISTRIBUTION = {"ours": ("agents-zoo", "ours (agents-zoo {version}, TF)"),
                        "sb3": ("stable-baselines3", "SB3 {version} (torch)"),
                        "imitation": ("imitation", "imitation {version} (torch)")}


def write_result_files(stem: Path, result: dict[str, Any], markdown: str) -> None:
    """A benchmark script's result as ``stem.json`` and its table as ``stem.md``, each written atomically."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stem.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), markdown)
    print(f"wrote {stem}.json and {stem}.md")


def library_of(label: str) -> str:
    """``ours[vanilla]`` -> ``ours``."""
    return label.split("[", 1)[0]


def run_label(key: dict[str, Any]) -> str:
    return key["library"] if key.get("variant") is None else f"{key['library']}[{key['variant']}]"


def protocol_of(key: dict[str, Any]) -> str:
    """A run key's protocol; keys of single-thread runs (and of runs made before protocols) name none."""
    return key.get("protocol", SINGLE_THREAD)


def display_label(label: str, runs: list[dict[str, Any]]) -> str:
    library = library_of(label)
    distribution, template = LIBRARY_DISTRIBUTION.get(library, (library, "{version}"))
    version = runs[0].get("versions", {}).get(distribution, "?")
    text = template.format(version=version)
    return text if label == library else f"{text} `{label[len(library):]}`"


def _group(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]]:
    """(algorithm, env, protocol) -> library label -> records, sorted by seed."""
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for record in records:
        key = record["key"]
        groups[(key["algo"], key["env"], protocol_of(key))][run_label(key)].append(record)
    for libraries in groups.values():
        for runs in libraries.values():
            runs.sort(key=lambda r: r["key"]["seed"])
    return groups


def _finals(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.array([r["final"]["mean"] for r in runs])


def run_speeds(runs: list[dict[str, Any]], field: str = "steps_per_second") -> np.ndarray:
    """Steps/s by wall clock (``steps_per_second``) or by process CPU time (``cpu_steps_per_second``)."""
    return np.array([r["timing"][field] for r in runs if r["timing"].get(field)])


def _target_return(runs_by_library: dict[str, list[dict[str, Any]]], algo: str) -> tuple[float | None, str]:
    experts = sorted({float(run["expert_return"]) for runs in runs_by_library.values() for run in runs
                      if run.get("expert_return") is not None})
    if len(experts) > 1:  # records made before the sweep kept its episodes, on another machine's expert
        listed = ", ".join(f"{expert:.1f}" for expert in experts)
        return experts[0], (f"the lowest of the experts' mean returns; the runs imitated different experts "
                            f"({listed}), so their fractions of the expert do not compare")
    if experts:  # normalized scores are then fractions of the expert's return
        return experts[0], "the expert's mean return in the demonstrations"
    for runs in runs_by_library.values():
        target = runs[0]["spec"].get("target_return")
        if target is not None:
            return float(target), "target_return of the config"
    reference = runs_by_library.get(REFERENCE_LIBRARY.get(algo, ""), [])
    if reference:
        return float(np.mean(_finals(reference))), "mean of the reference library"
    return None, "no target"


def build_report(config: SweepConfig, records: list[dict[str, Any]], output: str | Path,
                 reps: int = stats.DEFAULT_REPS, plots: bool = True,
                 evaluations: list[dict[str, Any]] | None = None) -> str:
    """Write ``report.md`` and one PNG per (algorithm, env) into ``output``; return the markdown.
    ``evaluations``: records of ``--evaluate-models``, reported under the sections of their runs."""
    output = Path(output)
    wanted = {spec.key_text for spec in config.runs}
    records = [r for r in records if canonical_json(r["key"]) in wanted]
    evaluations = [e for e in evaluations or [] if canonical_json(e["key"]) in wanted]
    groups = _group(records)
    baselines: dict[str, np.ndarray] = {}
    for (algo, env, _), libs in sorted(groups.items(), key=lambda item: item[0][2] != SINGLE_THREAD):
        if algo == "random":
            baselines.setdefault(env, _finals(libs["ours"]))
    lines = [f"# Benchmark `{config.name}`", "", config.description, "",
             f"{len(records)} of {len(config.runs)} runs finished. Returns are the mean "
             "undiscounted return of the final deterministic evaluation of each run; intervals are 95% "
             f"stratified-bootstrap intervals over runs (rliable, {reps} resamples). Steps/s counts training "
             "time only (evaluation excluded). Each section names its timing protocol:", ""]
    lines += [f"- {text}" for text in _protocol_texts(records)]
    for library, versions in sorted(_versions(records).items()):
        lines.append(f"- {library} ran with " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    for machine, count in machine_counts(records):
        lines.append(f"- ran on: {machine} ({count} run{'s' if count != 1 else ''})")
    lines.append("")
    for (algo, env, protocol), libraries in sorted(groups.items()):
        if algo == "random":
            continue
        lines += _group_section(algo, env, protocol, libraries, baselines.get(env), reps)
        lines += kept_evaluation_lines(libraries, evaluations, reps)
        if plots:
            name = plot_curves(algo, env, protocol, libraries, output, reps)
            lines += [f"![{algo} on {env}, {protocol}]({name})", ""]
            name = plot_discriminator(algo, env, protocol, libraries, output)
            if name is not None:
                lines += [f"![discriminator of {algo} on {env}, {protocol}]({name})", ""]
            name = plot_exploration_std(algo, env, protocol, libraries, output)
            if name is not None:
                lines += [f"![exploration std of {algo} on {env}, {protocol}]({name})", ""]
    if baselines:
        lines += ["### Random agent (normalization baseline)", "", "| env | runs | return mean +- std |", "|---|---|---|"]
        for env, finals in sorted(baselines.items()):
            lines.append(f"| {env} | {len(finals)} | {finals.mean():.1f} +- {finals.std():.1f} |")
        lines.append("")
    text = "\n".join(lines)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / REPORT_FILE, text + "\n")
    return text


def _protocol_texts(records: list[dict[str, Any]]) -> list[str]:
    """One sentence per protocol the records ran under, with the cores of whole-machine runs."""
    cores: dict[str, set[int]] = collections.defaultdict(set)
    for record in records:
        threads = record.get("threads", {})
        cores[protocol_of(record["key"])].add(threads.get("tf_intra_op") or threads.get("torch_threads") or 1)
    return [PROTOCOL_TEXT[protocol].format(cores="/".join(str(n) for n in sorted(cores[protocol])))
            for protocol in PROTOCOLS if protocol in cores]


def machine_counts(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The machines the records came from (``benchmarks.machine.machine_text``), most runs first."""
    counts = collections.Counter(machine_text(record.get("machine")) for record in records)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _versions(records: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Versions per library: a reference may run in an environment of its own (benchmarks.reference_envs)."""
    versions: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for record in records:
        versions[record["key"]["library"]].update(record.get("versions", {}))
    return dict(versions)


def _group_section(algo: str, env: str, protocol: str, libraries: dict[str, list[dict[str, Any]]],
                   random_finals: np.ndarray | None, reps: int) -> list[str]:
    first = next(iter(libraries.values()))[0]
    budget = first["key"]["budget"]
    lines = [f"## {algo.upper()} on {env} ({budget:,} steps, {protocol})", ""]
    target, target_source = _target_return(libraries, algo)
    normalizable = beats_random(target, random_finals)
    header = "| library | runs | return mean +- std | IQM [95% CI] |"
    header += " normalized IQM [95% CI] |" if normalizable else ""
    header += " steps/s mean +- std | CPU steps/s | train time (s) | peak memory (MiB) |"
    threshold = reached_threshold(target, random_finals)
    if threshold is not None:
        header += f" runs reaching {threshold:g}: median steps, train s |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for library in sorted(libraries, key=lambda name: (library_of(name) != "ours", name)):
        runs = libraries[library]
        finals = _finals(runs)
        speeds, cpu_speeds = run_speeds(runs), run_speeds(runs, "cpu_steps_per_second")
        row = f"| {display_label(library, runs)} | {len(runs)} | {finals.mean():.1f} +- {finals.std():.1f} |"
        row += f" {stats.iqm_interval(finals, reps).format()} |"
        if normalizable:
            normalized = stats.normalize(finals, float(np.mean(random_finals)), target)
            row += f" {stats.iqm_interval(normalized, reps).format(2)} |"
        train = np.array([r["timing"]["train_time_s"] for r in runs])
        memory = np.array([r["timing"]["peak_memory_mib"] for r in runs])
        speed_text = f"{speeds.mean():,.0f} +- {speeds.std():,.0f}" if speeds.size else "n/a"
        cpu_text = f"{cpu_speeds.mean():,.0f}" if cpu_speeds.size else "n/a"
        row += f" {speed_text} | {cpu_text} | {train.mean():.1f} | {memory.mean():.0f} |"
        if threshold is not None:
            row += f" {time_to_threshold(runs, threshold)} |"
        lines.append(row)
    lines.append("")
    reference = REFERENCE_LIBRARY.get(algo)
    for label in sorted(name for name in libraries if library_of(name) == "ours"):
        if reference not in libraries:
            break
        ours, theirs = libraries[label], libraries[reference]
        improvement = stats.probability_of_improvement(_finals(ours), _finals(theirs), reps)
        lines.append(f"- P({label} > {reference}) = {improvement.format(2)}")
        lines += last_evaluations_lines(label, reference, ours, theirs, reps)
        ours, theirs, machine_note = same_machine_runs(label, reference, ours, theirs)
        if machine_note:
            lines.append(f"- {machine_note}")
        for field, what in (("steps_per_second", "wall-clock steps/s"), ("cpu_steps_per_second", "CPU-time steps/s")):
            ours_speed, reference_speed = run_speeds(ours, field), run_speeds(theirs, field)
            if ours_speed.size and reference_speed.size:
                ratio = stats.ratio_of_means(ours_speed, reference_speed, reps)
                lines.append(f"- speed ratio {label} / {reference} ({what}) = {ratio.format(2)}")
        lines += env_cost_lines(label, reference, ours, theirs, reps)
        if threshold is not None:
            ours_seconds, reference_seconds = _first_reaching(ours, threshold)[1], _first_reaching(theirs, threshold)[1]
            if ours_seconds and reference_seconds and np.nanmedian(reference_seconds) > 0:
                lines.append(f"- time to {threshold:g} {label} / {reference} (median training seconds of the runs "
                             f"that reached it) = {np.nanmedian(ours_seconds) / np.nanmedian(reference_seconds):.3f}")
    if normalizable:
        lines.append(f"- normalized score: 0 = random agent ({float(np.mean(random_finals)):.1f}), "
                     f"1 = {target:.1f} ({target_source})")
    replay = {display_label(label, runs): runs[0].get("replay_bytes_per_transition")
              for label, runs in sorted(libraries.items(), key=lambda item: (library_of(item[0]) != "ours", item[0]))}
    if any(value is not None for value in replay.values()):
        lines.append("- replay memory per transition (the buffer's arrays over its capacity): " + ", ".join(
            f"{label} {value:,.0f} B" for label, value in replay.items() if value is not None))
    lines += hyperparameter_lines(libraries)
    lines.append("")
    if target is not None and first.get("expert_return") is not None:
        lines += expert_fractions(libraries, target, float(np.mean(random_finals)) if normalizable else 0.0)
    return lines


def hyperparameter_lines(libraries: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The settings every run of the section shares, then each variant's own (a variant's
    settings are not every run's: the reference and the other variants run without them)."""
    # A variant's process environment (upper-case names) beside its hyperparameters
    settings = {label: {**runs[0]["spec"]["hyperparameters"], **(runs[0]["spec"].get("environment") or {})}
                for label, runs in libraries.items()}
    first = next(iter(settings.values()))
    shared = {name: value for name, value in first.items()
              if all(name in other and other[name] == value for other in settings.values())}
    lines = ["- hyperparameters: " + _settings_text(shared)] if shared else []
    own = {label: {name: value for name, value in values.items() if name not in shared}
           for label, values in sorted(settings.items())}
    if any(own.values()):
        lines.append("- each row's own settings: " + "; ".join(
            f"{display_label(label, libraries[label])}: {_settings_text(values)}" for label, values in own.items() if values))
    return lines


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"`{name}={value}`" for name, value in sorted(settings.items()))


def mean_and_standard_error(returns: list[float]) -> tuple[float, float]:
    """The mean of one policy's episode returns and its standard error (NaN from one episode)."""
    values = np.asarray(returns, dtype=np.float64)
    error = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return float(values.mean()), float(error)


def load_evaluations(path: str | Path) -> list[dict[str, Any]]:
    """The ``--evaluate-models`` records of ``path`` (JSON lines); one without a non-empty list of
    numeric returns is skipped with a warning, as ``harness.load_records`` skips a line that is not a record."""
    import warnings

    from benchmarks.harness import load_records

    evaluations = []
    for evaluation in load_records(path):
        returns = evaluation.get("returns")
        if not isinstance(returns, list) or not returns or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in returns):
            warnings.warn(f"{path}: the evaluation of {evaluation['key']} has no list of returns and is ignored",
                          stacklevel=2)
            continue
        evaluations.append(evaluation)
    return evaluations


def kept_evaluation_lines(libraries: dict[str, list[dict[str, Any]]], evaluations: list[dict[str, Any]],
                          reps: int) -> list[str]:
    """The section's runs whose kept policies were evaluated again, longer: each run's mean and
    standard error, each library's IQM over those runs where it has more than one, and the
    probability of improvement where both libraries have more than one. Of several evaluations of one run,
    the one with the most episodes (the latest of equals)."""
    longest: dict[str, dict[str, Any]] = {}
    for evaluation in evaluations:
        key = canonical_json(evaluation["key"])
        if key not in longest or len(evaluation["returns"]) >= len(longest[key]["returns"]):
            longest[key] = evaluation
    means: dict[str, np.ndarray] = {}
    texts = []
    for label in sorted(libraries, key=lambda name: (library_of(name) != "ours", name)):
        kept = sorted((longest[key] for key in (canonical_json(run["key"]) for run in libraries[label]) if key in longest),
                      key=lambda evaluation: evaluation["key"]["seed"])
        if not kept:
            continue
        summaries = [mean_and_standard_error(evaluation["returns"]) for evaluation in kept]
        runs_text = ", ".join(f"seed {evaluation['key']['seed']} {mean:.1f} +- {error:.1f} "
                              f"({len(evaluation['returns'])} episodes)"
                              for evaluation, (mean, error) in zip(kept, summaries))
        means[label] = np.array([mean for mean, _ in summaries])
        iqm = f" (IQM {stats.iqm_interval(means[label], reps).format()})" if len(kept) > 1 else ""
        texts.append(f"{label}: {runs_text}{iqm}")
    if not texts:
        return []
    lines = ["- kept policies evaluated again (`agents-zoo bench --evaluate-models`, " + EVALUATIONS_FILE
             + "; mean +- standard error per run): " + "; ".join(texts)]
    ours = [label for label in means if library_of(label) == "ours" and means[label].size > 1]
    theirs = [label for label in means if library_of(label) != "ours" and means[label].size > 1]
    for label in ours:
        for reference in theirs:
            improvement = stats.probability_of_improvement(means[label], means[reference], reps)
            lines.append(f"- on those evaluations P({label} > {reference}) = {improvement.format(2)}")
    return lines + [""]


def last_evaluation_means(curves: list[Any]) -> np.ndarray:
    """Each curve's mean of its last ``LAST_EVALUATIONS`` points."""
    return np.array([np.mean(curve[-LAST_EVALUATIONS:]) for curve in curves])


def last_evaluations(runs: list[dict[str, Any]]) -> np.ndarray | None:
    """Each run's ``last_evaluation_means``, or None unless every run's curve has more points than
    that (a speed sweep's two-point curves say nothing here)."""
    curves = [run["curve"]["mean"] for run in runs]
    if not curves or min(len(curve) for curve in curves) <= LAST_EVALUATIONS:
        return None
    return last_evaluation_means(curves)


def last_evaluations_lines(label: str, reference: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
                           reps: int) -> list[str]:
    """The two libraries compared on the mean of each run's last evaluations (IQM over runs, and
    the probability of improvement), beside the comparison of final evaluations above it."""
    ours_last, theirs_last = last_evaluations(ours), last_evaluations(theirs)
    if ours_last is None or theirs_last is None:
        return []
    improvement = stats.probability_of_improvement(ours_last, theirs_last, reps)
    return [f"- mean of each run's last {LAST_EVALUATIONS} evaluations (learning-curve points): {label} IQM "
            f"{stats.iqm_interval(ours_last, reps).format()}, {reference} IQM "
            f"{stats.iqm_interval(theirs_last, reps).format()}; P({label} > {reference}) = {improvement.format(2)}"]


def recorded_machine(run: dict[str, Any]) -> str | None:
    """The run's machine (``machine_text``), or None where its record did not name the CPU."""
    machine = run.get("machine") or {}
    return machine_text(machine) if machine.get("cpu_model") else None


def same_machine_runs(label: str, reference: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The runs whose speeds compare: all of them where the records name at most one machine;
    otherwise those made on the machine both sides ran on most (none if there is no such
    machine), with a line saying so. A run finished on another CPU (a later session on another
    machine) would otherwise turn a difference of CPUs into a speed ratio."""
    recorded = {recorded_machine(run) for run in ours + theirs} - {None}
    if len(recorded) <= 1:
        return ours, theirs, None
    counts = {machine: (sum(recorded_machine(run) == machine for run in ours),
                        sum(recorded_machine(run) == machine for run in theirs)) for machine in recorded}
    shared = [machine for machine, (mine, other) in counts.items() if mine and other]
    if not shared:
        where = "; ".join(f"{machine}: {mine} of {label}, {other} of {reference}"
                          for machine, (mine, other) in sorted(counts.items()))
        return [], [], f"no speed ratio: the two libraries' runs were made on different machines ({where})"
    machine = max(shared, key=lambda name: (min(counts[name]), sum(counts[name]), name))
    mine, other = counts[machine]
    return ([run for run in ours if recorded_machine(run) == machine],
            [run for run in theirs if recorded_machine(run) == machine],
            f"the runs were made on more than one machine (the table's steps/s mix them): the speed ratios "
            f"below compare the {mine} run(s) of {label} and {other} of {reference} made on {machine}")


def env_cpu_per_step(runs: list[dict[str, Any]]) -> np.ndarray:
    """Milliseconds of CPU the training envs took per agent step, for the runs that timed them."""
    return np.array([r["timing"]["env_cpu_time_s"] / r["num_timesteps"] * 1e3 for r in runs
                     if r["timing"].get("env_cpu_time_s") is not None and r.get("num_timesteps")])


def env_cost_lines(label: str, reference: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
                   reps: int) -> list[str]:
    """What the env itself costs each side, the speed ratio of everything else (the learner), and
    the CPU-time ratio the env would allow were our learner free: the reference's CPU per step
    over our env's. Empty unless both sides timed their envs (single-thread runs)."""
    ours_env, theirs_env = env_cpu_per_step(ours), env_cpu_per_step(theirs)
    reference_speed = run_speeds(theirs, "cpu_steps_per_second")
    if not (ours_env.size and theirs_env.size and reference_speed.size):
        return []
    lines = [f"- env CPU per step (the training envs' step and reset, timed alike): {label} {ours_env.mean():.3f} ms, "
             f"{reference} {theirs_env.mean():.3f} ms; the env alone caps the CPU-time ratio {label} / {reference} "
             f"at {1e3 / reference_speed.mean() / ours_env.mean():.2f}x (the reference's CPU per step over the env "
             f"CPU per step of {label}: the ratio with a learner that cost nothing)"]
    ours_learner, reference_learner = (run_speeds(ours, "learner_cpu_steps_per_second"),
                                       run_speeds(theirs, "learner_cpu_steps_per_second"))
    if ours_learner.size and reference_learner.size:
        ratio = stats.ratio_of_means(ours_learner, reference_learner, reps)
        lines.append(f"- speed ratio {label} / {reference} (CPU-time steps/s without the env's time: the learners) "
                     f"= {ratio.format(2)}")
    return lines


def expert_fractions(libraries: dict[str, list[dict[str, Any]]], expert: float, random: float) -> list[str]:
    """Fractions of the expert's return, (return - random) / (expert - random), per library (mean +- std
    over runs): of the final evaluation, of the mean of the last ``LAST_EVALUATIONS`` learning-curve
    points, and of the best point (GAIL's return swings between evaluations); then, run by run in
    seed order, the lowest evaluation from the first one at ``COLLAPSE_CHECK_FRACTION`` of the
    expert on (a run that reached the expert's level and then lost it shows there)."""
    if expert == random:
        return []
    lines = [f"| library | fraction of expert: final | mean of last {LAST_EVALUATIONS} evaluations | best evaluation "
             f"| lowest evaluation after first reaching {COLLAPSE_CHECK_FRACTION} (each run) |",
             "|---|---|---|---|---|"]
    for library in sorted(libraries, key=lambda name: (library_of(name) != "ours", name)):
        runs = sorted(libraries[library], key=lambda r: r["key"]["seed"])
        curves = [(np.asarray(r["curve"]["mean"]) - random) / (expert - random) for r in runs if r["curve"]["mean"]]
        columns = [(_finals(runs) - random) / (expert - random), last_evaluation_means(curves),
                   np.array([np.max(c) for c in curves])]
        cells = [f"{f.mean():.2f} +- {f.std():.2f}" if f.size else "n/a" for f in columns]
        cells.append(", ".join(_lowest_after_reaching(c, COLLAPSE_CHECK_FRACTION) for c in curves) or "n/a")
        lines.append(f"| {display_label(library, runs)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _lowest_after_reaching(fractions: np.ndarray, level: float) -> str:
    reached = np.flatnonzero(fractions >= level)
    return f"{fractions[reached[0]:].min():.2f}" if reached.size else "never reached"


def beats_random(target: float | None, random_finals: np.ndarray | None) -> bool:
    """Whether a target sits above the random agent's mean return. A target at or below it (the
    reference library's mean when that did not learn) makes normalized scores and time-to-threshold
    meaningless: an untrained policy already meets it."""
    return target is not None and random_finals is not None and random_finals.size > 0 \
        and target > float(np.mean(random_finals))


def reached_threshold(target: float | None, random_finals: np.ndarray | None) -> float | None:
    """95% of the way from the random agent's return to the target (95% of the target when it is positive
    and no random baseline ran); None without a target, or with one the random agent already meets."""
    if target is None:
        return None
    if random_finals is not None and random_finals.size:
        if not beats_random(target, random_finals):
            return None
        random_mean = float(np.mean(random_finals))
        return round(random_mean + 0.95 * (target - random_mean), 1)
    return round(0.95 * target, 1) if target > 0 else None


def time_to_threshold(runs: list[dict[str, Any]], threshold: float) -> str:
    """How many runs' learning curves reached ``threshold``, and the median env steps and training
    seconds (evaluation excluded) at the first evaluation that did."""
    steps, seconds = _first_reaching(runs, threshold)
    if not steps:
        return f"0/{len(runs)}"
    return f"{len(steps)}/{len(runs)}: {np.median(steps):,.0f}, {np.nanmedian(seconds):.1f}"


def _first_reaching(runs: list[dict[str, Any]], threshold: float) -> tuple[list[int], list[float]]:
    """Env steps and training seconds at the first evaluation reaching ``threshold``, of each run that did."""
    steps, seconds = [], []
    for run in runs:
        curve = run["curve"]
        times = run["timing"].get("curve_train_time_s", [])
        for index, mean in enumerate(curve["mean"]):
            if mean >= threshold:
                steps.append(curve["steps"][index])
                seconds.append(times[index] if index < len(times) else float("nan"))
                break
    return steps, seconds


def plot_curves(algo: str, env: str, protocol: str, libraries: dict[str, list[dict[str, Any]]], output: Path,
                reps: int) -> str:
    """Learning curves, IQM over runs with 95% bands, against env steps and against training time."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (by_steps, by_time) = pyplot.subplots(1, 2, figsize=(11, 4))
    for library in sorted(libraries, key=lambda name: (library_of(name) != "ours", name)):
        runs = libraries[library]
        length = min(len(r["curve"]["mean"]) for r in runs)
        if length == 0:
            continue
        curves = np.array([r["curve"]["mean"][:length] for r in runs])
        steps = np.array(runs[0]["curve"]["steps"][:length])
        # Runs reach an evaluation point at different times: the x position is their mean time.
        times = np.mean([r["timing"]["curve_train_time_s"][:length] for r in runs], axis=0)
        centre, band = stats.iqm_curve(curves, reps)
        label = display_label(library, runs)
        for axis, x in ((by_steps, steps), (by_time, times)):
            axis.plot(x, centre, label=label)
            axis.fill_between(x, band[0], band[1], alpha=0.25)
    by_steps.set_xlabel("env steps")
    by_time.set_xlabel("training time (s, evaluation excluded)")
    for axis in (by_steps, by_time):
        axis.set_ylabel("evaluation return (IQM, 95% CI)")
        axis.grid(alpha=0.3)
        axis.legend()
    return _save_figure(figure, f"{algo.upper()} on {env} ({protocol})", "curves", algo, env, protocol, output)


def _save_figure(figure: Any, title: str, kind: str, algo: str, env: str, protocol: str, output: Path) -> str:
    """Title, lay out, write ``<kind>_<algo>_<env>[_<protocol>].png`` into ``output`` and close; its name."""
    from matplotlib import pyplot

    figure.suptitle(title)
    figure.tight_layout()
    suffix = "" if protocol == SINGLE_THREAD else f"_{protocol}"
    name = f"{kind}_{algo}_{env.replace('/', '_')}{suffix}.png"
    figure.savefig(output / name, dpi=100)
    pyplot.close(figure)
    return name


def plot_exploration_std(algo: str, env: str, protocol: str, libraries: dict[str, list[dict[str, Any]]],
                         output: Path) -> str | None:
    """SB3's ``train/std`` (the mean of exp(log_std)) over training, one line per run beside its
    return curve: a seed that levels off while its std collapses stopped exploring. None when no
    run kept it (discrete actions, DQN, records older than the diagnostic)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (returns, stds) = pyplot.subplots(1, 2, figsize=(11, 4))
    drawn = False
    for library, runs in sorted(libraries.items()):
        for run in sorted(runs, key=lambda r: r["key"]["seed"]):
            std = run["curve"].get("diagnostics", {}).get("train/std")
            if not std:
                continue
            label = f"{display_label(library, runs)} seed {run['key']['seed']}"
            steps = run["curve"]["steps"][:len(std)]
            line, = stds.plot(steps, [np.nan if v is None else v for v in std], label=label)
            returns.plot(run["curve"]["steps"], run["curve"]["mean"], color=line.get_color(), label=label)
            drawn = True
    if not drawn:
        pyplot.close(figure)
        return None
    returns.set_ylabel("evaluation return (mean of the episodes)")
    stds.set_ylabel("train/std: mean of exp(log_std)")
    stds.set_yscale("log")
    for axis in (returns, stds):
        axis.set_xlabel("env steps")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save_figure(figure, f"{algo.upper()} on {env}: exploration per run ({protocol})", "exploration", algo,
                        env, protocol, output)


def plot_discriminator(algo: str, env: str, protocol: str, libraries: dict[str, list[dict[str, Any]]],
                       output: Path) -> str | None:
    """GAIL's discriminator over training, for the runs whose records kept it (ours): the mean
    reward it gives the policy's and the expert's pairs, and its accuracy on each, averaged over
    seeds at each evaluation; None when no run has them."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels = {"reward": (("disc/reward_mean", "policy pairs"), ("disc/reward_expert", "expert pairs")),
              "accuracy": (("disc/gen_acc", "on policy pairs"), ("disc/expert_acc", "on expert pairs"))}
    drawn = False
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for library, runs in sorted(libraries.items()):
        kept = [r for r in runs if r["curve"].get("diagnostics")]
        if not kept:
            continue
        length = min(len(r["curve"]["steps"]) for r in kept)
        steps = np.array(kept[0]["curve"]["steps"][:length])
        for axis, series in zip(axes, panels.values()):
            for name, what in series:
                values = np.array([[np.nan if v is None else v for v in r["curve"]["diagnostics"].get(name, [])[:length]]
                                   for r in kept if len(r["curve"]["diagnostics"].get(name, [])) >= length])
                counts = np.sum(~np.isnan(values), axis=0) if values.size else np.zeros(0)
                if counts.any():  # the mean over the seeds that logged it (none before GAIL's first round)
                    means = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)
                    axis.plot(steps, means, label=f"{display_label(library, kept)}: {what}")
                    drawn = True
    if not drawn:
        pyplot.close(figure)
        return None
    axes[0].set_ylabel("mean reward (last round)")
    axes[1].set_ylabel("discriminator accuracy")
    axes[1].set_ylim(-0.02, 1.02)
    for axis in axes:
        axis.set_xlabel("env steps")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save_figure(figure, f"{algo.upper()} discriminator on {env} ({protocol}; mean over seeds)", "discriminator",
                        algo, env, protocol, output)
