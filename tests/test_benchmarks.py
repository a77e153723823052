"""The benchmark harness: configs, translation, resumable sweeps, executors, CLI end to end."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import cli, config, harness, runner, translate
from benchmarks.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
QUICK = config.resolve_config_path("quick")


def tiny_config(**changes):
    """The quick config shrunk to seconds: PPO ours vs SB3, 2 seeds, a few hundred steps."""
    data = json.loads(QUICK.read_text())
    data["name"] = "tiny"
    data["evaluation"] = {"eval_every": 256, "n_eval_episodes": 2, "n_final_episodes": 3}
    experiment = data["experiments"][0]
    experiment["budget"] = 512
    experiment["hyperparameters"] = {**experiment["hyperparameters"], "n_epochs": 2}
    data.update(changes)
    return data


def random_only_config(seeds=(0, 1)):
    return {"name": "random-only", "seeds": list(seeds), "random_baseline": False,
            "evaluation": {"eval_every": 100, "n_eval_episodes": 2, "n_final_episodes": 3},
            "experiments": [{"algo": "random", "env": "CartPole-v1", "budget": 200}]}


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", config.shipped_config_names())
def test_every_shipped_config_validates(name):
    sweep = config.load_config(name)
    assert sweep.runs
    assert all(spec.library in config.LIBRARIES_FOR_ALGORITHM[spec.algo] for spec in sweep.runs)


def test_quick_config_is_ours_vs_sb3_with_a_random_baseline():
    sweep = config.load_config("quick")
    libraries = {(spec.algo, spec.library) for spec in sweep.runs}
    assert libraries == {("ppo", "ours"), ("ppo", "sb3"), ("random", "ours")}
    assert all(spec.budget <= 20_000 for spec in sweep.runs)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(experimnts=[]), "unknown key 'experimnts'. Did you mean 'experiments'"),
    (lambda d: d["experiments"][0].update(algo="ppo2"), "unknown algorithm 'ppo2'. Did you mean 'ppo'"),
    (lambda d: d["experiments"][0].update(libraries=["ours", "sb4"]), "unknown library 'sb4'. Did you mean 'sb3'"),
    (lambda d: d["experiments"][0].update(libraries=["ours", "imitation"]), "'imitation' has no 'ppo'"),
    (lambda d: d["experiments"][0].update(env="CartPole-v2"), "unknown environment id 'CartPole-v2'.*CartPole-v1"),
    (lambda d: d["experiments"][0].update(budget=0), "budget must be a positive int.*got 0"),
    (lambda d: d["experiments"][0].update(budget="16k"), "budget must be a positive int.*'16k'"),
    (lambda d: d.update(seeds=[0, 0]), "lists a seed twice"),
    (lambda d: d.update(seeds=[-1]), "non-negative ints, got \\[-1\\]"),
    (lambda d: d["experiments"][0]["hyperparameters"].update(n_step=32), "(?i)'n_step'.*did you mean 'n_steps'"),
    (lambda d: d["experiments"][0]["hyperparameters"].update(learning_rate="linear"), "lin_1e-3.*'linear'"),
    (lambda d: d["experiments"][0].update(algo="dqn", env="Pendulum-v1", hyperparameters={}),
     "discrete action space but 'Pendulum-v1'"),
    (lambda d: d["evaluation"].update(n_eval_episodes=0), "n_eval_episodes must be a positive int, got 0"),
    (lambda d: d["experiments"][0].update(algo="gail", libraries=["ours"], hyperparameters={}),
     "need a demonstrations object"),
    (lambda d: d.update(name="my sweep"), "'name' must be a word"),
])
def test_bad_configs_name_the_key_and_value(mutate, message):
    data = tiny_config()
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        config.parse_config(data)


def test_unknown_config_name_suggests_the_closest_shipped_one():
    with pytest.raises(ConfigError, match="Did you mean 'quick'"):
        config.resolve_config_path("quik")


def test_run_key_changes_with_hyperparameters_but_not_with_the_target():
    base = config.parse_config(tiny_config()).runs[0]
    changed_data = tiny_config()
    changed_data["experiments"][0]["hyperparameters"]["gamma"] = 0.99
    changed = config.parse_config(changed_data).runs[0]
    retargeted_data = tiny_config()
    retargeted_data["experiments"][0]["target_return"] = 475
    retargeted = config.parse_config(retargeted_data).runs[0]
    assert base.hyperparameter_hash != changed.hyperparameter_hash
    assert base.key == retargeted.key
    assert config.RunSpec.from_json(json.loads(json.dumps(base.to_json()))) == base


# ----------------------------------------------------------------------------- translation
def test_one_config_becomes_both_libraries_arguments():
    hyperparameters = {"n_envs": 8, "n_steps": 32, "learning_rate": "lin_1e-3", "clip_range": 0.2,
                       "policy_hidden_sizes": [256, 256], "activation": "relu", "normalize": True}
    ours = translate.to_ours("ppo", hyperparameters)
    assert ours["learning_rate"] == pytest.approx(1e-3) and ours["learning_rate_schedule"] == "linear"
    assert ours["clip_range"] == 0.2 and "clip_range_schedule" not in ours
    assert ours["normalize_observation"] and ours["normalize_reward"]
    kwargs, settings = translate.to_sb3("ppo", hyperparameters)
    assert kwargs["learning_rate"](1.0) == pytest.approx(1e-3)
    assert kwargs["learning_rate"](0.25) == pytest.approx(2.5e-4)
    assert kwargs["policy_kwargs"]["net_arch"] == [256, 256]
    assert kwargs["policy_kwargs"]["activation_fn"].__name__ == "ReLU"
    assert settings["n_envs"] == 8 and settings["normalize"] is True
    assert "n_envs" not in kwargs


def test_ours_rejects_a_hyperparameter_our_agent_lacks():
    with pytest.raises(ValueError, match="double_q|unknown setting"):
        translate.check_hyperparameters("ppo", "ours", {"double_q": True})


def test_mapping_table_lists_every_shared_key():
    table = translate.mapping_table_markdown()
    for key in translate.SHARED_KEYS:
        assert f"`{key}`" in table


# ----------------------------------------------------------------------------- results
def test_records_survive_a_torn_foreign_line(tmp_path):
    path = tmp_path / harness.RESULTS_FILE
    path.write_text(json.dumps({"key": {"algo": "ppo"}}) + "\n" + '{"key": {"algo": "pp')
    with pytest.warns(UserWarning, match="not valid JSON"):
        records = harness.load_records(path)
    assert records == [{"key": {"algo": "ppo"}}]


def _without_timing(record):
    record = copy.deepcopy(record)
    for name in runner.NONDETERMINISTIC_FIELDS:
        record.pop(name)
    return record


def test_sweep_skips_finished_runs_and_records_are_reproducible(tmp_path):
    sweep = config.parse_config(random_only_config())
    lines: list[str] = []
    first = harness.run_sweep(sweep, tmp_path / "a", workers=2, log=lines.append)
    assert len(first.finished) == 2 and not first.failed
    records = harness.load_records(tmp_path / "a" / harness.RESULTS_FILE)
    assert {r["key"]["seed"] for r in records} == {0, 1}
    record = records[0]
    assert record["threads"]["OMP_NUM_THREADS"] == "1" and record["threads"]["tf_intra_op"] == 1
    assert record["timing"]["peak_memory_mib"] > 0 and record["versions"]["gymnasium"]
    assert len(record["curve"]["mean"]) == 3  # steps 0, 100, 200
    assert len(record["final"]["returns"]) == 3

    again = harness.run_sweep(sweep, tmp_path / "a", workers=2, log=lines.append)
    assert len(again.skipped) == 2 and not again.finished
    assert "2 already finished" in lines[-1]

    # The same run in another sweep gives the same record apart from timing: runs are seeded.
    harness.run_sweep(config.parse_config(random_only_config(seeds=(1,))), tmp_path / "b", log=lines.append)
    (other,) = harness.load_records(tmp_path / "b" / harness.RESULTS_FILE)
    (same_seed,) = [record for record in records if record["key"]["seed"] == 1]
    assert _without_timing(other) == _without_timing(same_seed)


def test_failed_run_is_logged_and_retried(tmp_path):
    data = random_only_config(seeds=(0,))
    data["experiments"][0]["env_kwargs"] = {"no_such_argument": 1}
    sweep = config.parse_config(data)
    outcome = harness.run_sweep(sweep, tmp_path, log=lambda line: None)
    assert len(outcome.failed) == 1 and "no_such_argument" in outcome.failed[0][1]
    assert not harness.load_records(tmp_path / harness.RESULTS_FILE)
    failures = [json.loads(line) for line in (tmp_path / harness.FAILURES_FILE).read_text().splitlines()]
    assert failures[0]["key"] == sweep.runs[0].key


def test_cli_validates_before_running(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tiny_config(seeds="0")))
    assert cli.main(["--config", str(bad), "--output", str(tmp_path)]) == 2
    assert "'seeds' must be a non-empty list" in capsys.readouterr().err
    assert cli.main(["--config", "quick", "--dry-run"]) == 0
    assert "CartPole-v1__ppo__sb3__seed1" in capsys.readouterr().out
    assert cli.main(["--show-mapping"]) == 0
    assert "policy_kwargs.net_arch" in capsys.readouterr().out
    assert cli.main(["--config", "quick", "--address", "auto"]) == 2
    assert "needs --executor ray" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end (slow)
def _bench_command(*args: str) -> list[str]:
    # The lead's `agents-zoo` entry point; benchmarks.cli alone where it is not installed.
    if (REPO / "src" / "agents_zoo" / "cli.py").is_file():
        return [sys.executable, "-c", "import sys; from agents_zoo.cli import main; sys.exit(main())", "bench", *args]
    return [sys.executable, "-m", "benchmarks.cli", *args]


@pytest.mark.slow
def test_bench_cli_killed_mid_sweep_resumes_without_redoing_runs(tmp_path):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(tiny_config()))
    output = tmp_path / "out"
    results = output / harness.RESULTS_FILE
    total = len(config.load_config(str(config_path)).runs)  # 2 ours + 2 SB3 + 2 random
    command = _bench_command("--config", str(config_path), "--output", str(output), "--workers", "1", "--reps", "200")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and len(harness.load_records(results)) < 2:
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    before = results.read_text().splitlines()
    assert 2 <= len(before) < total, "the sweep should have been killed part way"
    finished = {json.dumps(json.loads(line)["key"], sort_keys=True) for line in before}

    completed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"{len(before)} already finished" in completed.stdout
    after = results.read_text().splitlines()
    assert after[:len(before)] == before  # finished records kept byte for byte
    keys = [json.dumps(json.loads(line)["key"], sort_keys=True) for line in after]
    assert len(after) == total and len(set(keys)) == total
    for label in finished:
        assert keys.count(label) == 1
    # The comparison table: ours and SB3 side by side with the statistics.
    from importlib import metadata

    # Each library is named with the version its records carry.
    assert f"| ours (agents-zoo {metadata.version('agents-zoo')}, TF) | 2 |" in completed.stdout
    assert f"| SB3 {metadata.version('stable-baselines3')} (torch) | 2 |" in completed.stdout
    assert "P(ours > sb3)" in completed.stdout and "speed ratio ours / sb3" in completed.stdout
    assert (output / "report.md").is_file() and (output / "curves_ppo_CartPole-v1.png").stat().st_size > 0


@pytest.mark.slow
def test_local_ray_gives_the_same_records_as_the_process_pool(tmp_path):
    pytest.importorskip("ray")
    data = tiny_config(seeds=[0])
    sweep = config.parse_config(data)
    harness.run_sweep(sweep, tmp_path / "pool", executor="local", workers=2, log=lambda line: None)
    harness.run_sweep(sweep, tmp_path / "ray", executor="ray", workers=2, log=lambda line: None)
    pool = {json.dumps(r["key"], sort_keys=True): r for r in harness.load_records(tmp_path / "pool" / "runs.jsonl")}
    ray = {json.dumps(r["key"], sort_keys=True): r for r in harness.load_records(tmp_path / "ray" / "runs.jsonl")}
    assert len(pool) == len(sweep.runs) == 3  # ours, SB3 and the random baseline
    assert pool.keys() == ray.keys()
    for key, record in pool.items():
        assert _without_timing(record) == _without_timing(ray[key]), key
        # Ray ran it in another process than the pool did, still with one thread.
        assert ray[key]["threads"]["OMP_NUM_THREADS"] == "1"
