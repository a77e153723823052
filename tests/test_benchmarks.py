"""The benchmark harness: configs, translation, resumable sweeps, executors, CLI end to end."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from benchmarks import cli, config, executors, harness, machine, report, runner, translate
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
    (lambda d: d.update(protocol="multi-core"),
     "'protocol' must be 'single-thread' or 'whole-machine', or a list of them; got 'multi-core'$"),
    (lambda d: d["experiments"][0].update(protocol=["whole-machine", "fast"]),
     r"experiments\[0\].protocol must be 'single-thread' or 'whole-machine', or a list of them; "
     r"got \['whole-machine', 'fast'\]$"),
    (lambda d: d.update(protocol=[]), "'protocol' must be 'single-thread' or 'whole-machine'.*got \\[\\]$"),
    (lambda d: d.update(protocol=["whole-machine", "whole-machine"]), "'protocol' lists a protocol twice"),
    (lambda d: d["experiments"][0].update(variants={"off": {"environment": {"tf onednn": "0"}}}),
     r"variants.off.environment: 'tf onednn' is not an environment variable name"),
    (lambda d: d["experiments"][0].update(variants={"off": {"environment": {"TF_ENABLE_ONEDNN_OPTS": 0}}}),
     r"variants.off.environment.TF_ENABLE_ONEDNN_OPTS must be a string, got 0$"),
    (lambda d: d["experiments"][0].update(variants={"off": {"environment": {"OMP_NUM_THREADS": "4"}}}),
     r"OMP_NUM_THREADS is set by the run's protocol"),
    (lambda d: d["experiments"][0].update(variants={"off": {"environment": {}}}),
     r"variants.off.environment must be a non-empty object of variable name -> string value, got \{\}"),
])
def test_bad_configs_name_the_key_and_value(mutate, message):
    data = tiny_config()
    mutate(data)
    with pytest.raises(ConfigError, match=message):
        config.parse_config(data)


def test_a_bad_protocol_is_one_line_naming_the_key_and_the_allowed_values():
    data = tiny_config()
    data["experiments"][0]["protocol"] = "whole_machine"
    with pytest.raises(ValueError) as caught:
        config.parse_config(data)
    message = str(caught.value)
    assert "\n" not in message and "experiments[0].protocol" in message and "'whole_machine'" in message
    assert all(f"'{protocol}'" in message for protocol in config.PROTOCOLS)


def test_runs_are_listed_seed_by_seed_so_the_libraries_alternate():
    # Runs share the machine with their neighbours in this order: each seed's runs of both
    # libraries (and every variant of ours) come together, so neither library's runs all fall in
    # one stretch of the sweep.
    data = tiny_config(seeds=[0, 1, 2])
    data["experiments"][0]["variants"] = {"a": {"n_epochs": 2}, "b": {"n_epochs": 3}}
    trained = [spec for spec in config.parse_config(data).runs if spec.algo != "random"]
    assert [(spec.seed, spec.library, spec.variant) for spec in trained] == [
        (seed, library, variant) for seed in (0, 1, 2)
        for library, variant in (("ours", "a"), ("ours", "b"), ("sb3", None))]


def test_protocols_make_runs_of_their_own_with_keys_of_their_own():
    single = config.parse_config(tiny_config())
    both = config.parse_config(tiny_config(protocol=["single-thread", "whole-machine"]))
    # Each experiment run under each protocol; the random baseline (only evaluated) once.
    trained = [spec for spec in both.runs if spec.algo != "random"]
    assert len(trained) == 2 * len([spec for spec in single.runs if spec.algo != "random"])
    assert [spec.protocol for spec in both.runs if spec.algo == "random"] == ["single-thread"] * 2
    whole = [spec for spec in trained if spec.protocol == "whole-machine"]
    assert len({spec.key_text for spec in both.runs}) == len(both.runs)
    assert len({spec.label for spec in both.runs}) == len(both.runs)
    for spec in whole:
        twin = next(other for other in trained if other.protocol == "single-thread"
                    and (other.library, other.seed) == (spec.library, spec.seed))
        assert spec.key == {**twin.key, "protocol": "whole-machine"}
        assert spec.hyperparameter_hash == twin.hyperparameter_hash and spec.label.endswith("__whole-machine")
    # Single-thread keys name no protocol: records made before protocols existed still match.
    assert {spec.key_text for spec in single.runs} <= {spec.key_text for spec in both.runs}
    assert all("protocol" not in spec.key for spec in single.runs)
    experiment_level = tiny_config()
    experiment_level["experiments"][0]["protocol"] = "whole-machine"
    assert {spec.protocol for spec in config.parse_config(experiment_level).runs if spec.algo != "random"} == {
        "whole-machine"}
    spec = whole[0]
    assert config.RunSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_whole_machine_runs_run_alone_after_the_others(monkeypatch):
    sweep = config.parse_config(tiny_config(protocol=["whole-machine", "single-thread"]))
    texts = [json.dumps(spec.to_json(), sort_keys=True) for spec in sweep.runs]
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    order: list[str] = []

    def fake_run(spec_text, checkpoint_folder=None, model_folder=None):
        running.append(spec_text)
        if len(running) > 1 and any(json.loads(t)["protocol"] == "whole-machine" for t in running):
            overlaps.append(tuple(running))
        time.sleep(0.05)
        order.append(json.loads(spec_text)["protocol"])
        running.remove(spec_text)
        return json.dumps({"ok": True, "record": {}})

    monkeypatch.setattr(executors, "execute_run", fake_run)
    executors.run_all(texts, lambda text, outcome: None, workers=3)
    assert not overlaps
    assert sorted(order) == sorted(spec.protocol for spec in sweep.runs)
    assert order.index("whole-machine") == order.count("single-thread")  # every shared run came first


def test_unknown_config_name_suggests_the_closest_shipped_one():
    with pytest.raises(ConfigError, match="Did you mean 'quick'"):
        config.resolve_config_path("quik")


def test_a_setting_the_reference_library_lacks_gets_the_closest_name_in_one_line():
    with pytest.raises(ValueError) as caught:
        translate.check_hyperparameters("ppo", "sb3", {"n_step": 32})
    message = str(caught.value)
    assert "\n" not in message and message.startswith("'n_step' has no sb3 equivalent for ppo. Did you mean 'n_steps'?")


def test_the_runner_imports_no_numpy_before_it_sets_the_thread_variables():
    """NumPy's BLAS, TF and torch size their pools from the thread variables when imported."""
    code = ("import sys, benchmarks.runner; "
            "print(sorted(m for m in ('numpy', 'gymnasium', 'tensorflow', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                            check=True)
    assert result.stdout.strip() == "[]"


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
    assert settings["vec_normalize"] == {"gamma": 0.99}  # SB3's default gamma, as ours
    assert "n_envs" not in kwargs


def test_vec_normalize_scales_rewards_with_the_algorithms_gamma():
    """RL-Zoo gives VecNormalize the algorithm's gamma; ours discounts its reward scaling with its
    own gamma, so the reference must too (VecNormalize's default, 0.99, is another setting)."""
    _, settings = translate.to_sb3("a2c", {"gamma": 0.9, "normalize": True})
    assert settings["vec_normalize"] == {"gamma": 0.9}
    _, settings = translate.to_sb3("gail", {"gamma": 0.95, "normalize": True})
    assert settings["vec_normalize"] == {"gamma": 0.95}
    _, settings = translate.to_sb3("a2c", {"gamma": 0.9})
    assert "vec_normalize" not in settings


def test_tf_like_rmsprop_is_rl_zoos_optimizer_class_for_sb3():
    """RL-Zoo's Atari A2C: policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))."""
    hyperparameters = {"n_envs": 16, "rms_prop_eps": 1e-5, "rms_prop_tf_like": True}
    translate.check_hyperparameters("a2c", "sb3", hyperparameters)
    assert translate.to_ours("a2c", hyperparameters)["rms_prop_tf_like"] is True
    pytest.importorskip("stable_baselines3")
    kwargs, _ = translate.to_sb3("a2c", hyperparameters)
    assert kwargs["policy_kwargs"]["optimizer_class"].__name__ == "RMSpropTFLike"
    assert kwargs["policy_kwargs"]["optimizer_kwargs"] == {"alpha": 0.99, "eps": 1e-5, "weight_decay": 0}
    assert "optimizer_class" not in translate.to_sb3("a2c", {"rms_prop_tf_like": False})[0].get("policy_kwargs", {})


def test_whole_machine_sb3_steps_its_envs_in_subprocesses():
    _, single = translate.to_sb3("ppo", {"n_envs": 8})
    _, whole = translate.to_sb3("ppo", {"n_envs": 8}, "whole-machine")
    _, gail = translate.to_sb3("gail", {"n_envs": 8}, "whole-machine")
    assert single["vec_env"] == "DummyVecEnv"
    assert whole["vec_env"] == gail["vec_env"] == "SubprocVecEnv" and whole["n_envs"] == 8
    assert runner.thread_count("single-thread") == 1
    assert runner.thread_count("whole-machine") == runner.machine_cores() >= 1
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common import vec_env

    assert getattr(vec_env, whole["vec_env"]) is vec_env.SubprocVecEnv  # the name train_sb3 looks up


def test_a_gail_experiment_composes_the_same_learner_and_discriminator_in_imitation():
    hyperparameters = {"n_envs": 4, "learner": "a2c", "learner_kwargs": {"n_steps": 32, "gamma": 0.9},
                       "gamma": 0.95, "disc_hidden_sizes": [100, 100], "disc_activation": "tanh",
                       "allow_variable_horizon": True, "demo_batch_size": 256}
    translate.check_hyperparameters("gail", "imitation", hyperparameters)
    kwargs, settings = translate.to_sb3("gail", hyperparameters)
    assert settings["learner"] == "a2c" and settings["n_envs"] == 4
    assert kwargs == {"n_steps": 32, "gamma": 0.95}  # a flat key over learner_kwargs, as ours
    assert settings["reward_net"]["hid_sizes"] == (100, 100)
    assert settings["reward_net"]["activation"].__name__ == "Tanh"
    assert settings["gail"] == {"allow_variable_horizon": True, "demo_batch_size": 256}
    assert translate.to_sb3("gail", {})[1]["learner"] == "ppo"


@pytest.mark.parametrize("hyperparameters, message", [
    ({"learner": "dqn"}, "learner must be one of 'ppo', 'a2c'.*got 'dqn'"),
    ({"learner": "a2c", "n_epochs": 4}, "'n_epochs' has no imitation equivalent for gail"),
    ({"learner_kwargs": [1]}, "learner_kwargs must be an object.*got \\[1\\]"),
    ({"disc_activation": "swish"}, "disc_activation must be one of.*got 'swish'"),
])
def test_a_gail_setting_imitation_cannot_take_is_named(hyperparameters, message):
    with pytest.raises(ValueError, match=message):
        translate.check_hyperparameters("gail", "imitation", hyperparameters)


def test_a_whole_machine_atari_run_of_ours_steps_the_fastest_vector_env():
    from benchmarks import trainers

    assert trainers.fastest_vector_env("agents_zoo/Pong-dqn-v0", 2, "single-thread") == "agents_zoo/Pong-dqn-v0"
    assert trainers.fastest_vector_env("CartPole-v1", 2, "whole-machine") == "CartPole-v1"
    envs = trainers.fastest_vector_env("agents_zoo/Pong-dqn-v0", 2, "whole-machine")
    try:  # ale-py's C++ env where it takes the preset (ale-py >= 0.12), else the Python chain
        assert envs.num_envs == 2 and envs.single_observation_space.shape == (4, 84, 84)
    finally:
        envs.close()


def test_sb3_replay_memory_is_its_arrays_over_the_transitions_they_hold():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import DQN

    from benchmarks import trainers

    model = DQN("MlpPolicy", "CartPole-v1", buffer_size=1000, device="cpu")
    # float32 observation and next observation (4 each), int64 action, float32 reward, done, timeout
    assert trainers.sb3_replay_bytes_per_transition(model.replay_buffer) == 2 * 16 + 8 + 3 * 4
    assert trainers.sb3_replay_bytes_per_transition(None) is None


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
    assert record["machine"]["cpu_model"] and record["machine"]["cpu_count"] == os.cpu_count()
    assert all(record["machine"][flag] in (True, False, None) for flag in machine.BF16_FLAGS)
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
    taken = tmp_path / "a-file"
    taken.write_text("")
    assert cli.main(["--config", "quick", "--models", str(taken), "--output", str(tmp_path / "out")]) == 2
    assert f"--models '{taken}' is a file; expected a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert cli.main(["--config", "quick", "--models", str(tmp_path / "models"), "--report-only"]) == 2
    assert "--report-only trains none" in capsys.readouterr().err
    assert cli.main(["--config", "quick", "--dry-run"]) == 0
    assert "CartPole-v1__ppo__sb3__seed1" in capsys.readouterr().out
    assert cli.main(["--show-mapping"]) == 0
    assert "policy_kwargs.net_arch" in capsys.readouterr().out
    assert cli.main(["--config", "quick", "--address", "auto"]) == 2
    assert "needs --executor ray" in capsys.readouterr().err


def _fake_record(spec, final, wall_speed, cpu_speed):
    return {"key": spec.key, "spec": spec.to_json(), "protocol": spec.protocol, "expert_return": None,
            "final": {"mean": final}, "curve": {"steps": [0], "mean": [final]},
            "versions": {"agents-zoo": "0.1.0", "stable-baselines3": "2.9.2"},
            "threads": {"tf_intra_op" if spec.library == "ours" else "torch_threads":
                        1 if spec.protocol == "single-thread" else 4},
            "timing": {"steps_per_second": wall_speed, "cpu_steps_per_second": cpu_speed, "train_time_s": 1.0,
                       "peak_memory_mib": 100.0, "curve_train_time_s": [0.0]}}


def test_report_and_headline_give_each_protocol_its_own_rows(tmp_path):
    from benchmarks import headline

    sweep = config.parse_config(tiny_config(protocol=["single-thread", "whole-machine"], random_baseline=False))
    records = []
    for spec in sweep.runs:
        ours = spec.library == "ours"
        if spec.protocol == "single-thread":
            records.append(_fake_record(spec, 500.0, 3000.0 if ours else 1000.0, 3000.0 if ours else 1000.0))
        else:  # whole-machine runs record no CPU-time speed: their env workers' CPU time is not counted
            records.append(_fake_record(spec, 500.0, 8000.0 if ours else 2000.0, None))
    text = report.build_report(sweep, records, tmp_path / "report", reps=200, plots=False)
    assert "## PPO on CartPole-v1 (512 steps, single-thread)" in text
    assert "## PPO on CartPole-v1 (512 steps, whole-machine)" in text and "its 4 core(s)" in text
    whole_section = text.split("whole-machine)")[1]
    assert "(CPU-time steps/s)" not in whole_section and "(wall-clock steps/s) = 4.00" in whole_section
    results = tmp_path / "results" / "tiny"
    results.mkdir(parents=True)
    (results / harness.RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = headline.headline_rows(tmp_path / "results", reps=200)
    assert len(rows) == 2
    single_row, whole_row = sorted(rows, key=lambda row: "whole-machine" in row)
    assert "3,000 CPU steps/s" in single_row and "3.00 [3.00, 3.00]x |" in single_row
    assert "PPO CartPole-v1, 512 steps, 2 seeds, whole-machine" in whole_row
    assert "8,000 wall-clock steps/s" in whole_row and "4.00 [4.00, 4.00]x wall clock" in whole_row


def test_training_diagnostics_follow_the_curve_through_a_resume(monkeypatch):
    from benchmarks import progress

    monkeypatch.setattr(progress, "evaluate_policy", lambda *args, **kwargs: ([1.0], [1]))
    spec = config.parse_config(tiny_config()).runs[0]
    probes = iter([{}, {"disc/gen_acc": 0.5}, {"disc/gen_acc": 0.75, "disc/expert_acc": 1.0}])
    recorder = progress.CurveRecorder(spec, act=None, probe=lambda: next(probes))
    recorder.start()
    for step in (0, 256):
        recorder.maybe_evaluate(step)
    resumed = progress.CurveRecorder(spec, act=None, probe=lambda: next(probes))
    resumed.resume(json.loads(json.dumps(recorder.state())))
    resumed.maybe_evaluate(512)
    assert resumed.steps == [0, 256, 512]
    assert resumed.diagnostics == {"disc/gen_acc": [None, 0.5, 0.75], "disc/expert_acc": [None, None, 1.0]}


def test_both_libraries_record_the_exploration_std_at_each_evaluation(tmp_path):
    # SB3's train/std (the mean of exp(log_std)): a gSDE run that levels off can be told apart from
    # one that stopped exploring, ours beside SB3's.
    data = {"name": "std", "seeds": [0], "random_baseline": False,
            "evaluation": {"eval_every": 256, "n_eval_episodes": 1, "n_final_episodes": 1},
            "experiments": [{"algo": "ppo", "env": "Pendulum-v1", "budget": 512, "libraries": ["ours", "sb3"],
                             "hyperparameters": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2,
                                                 "learning_rate": 0.01, "use_sde": True, "sde_sample_freq": 4,
                                                 "log_std_init": -2.0}}]}
    sweep = config.parse_config(data)
    outcome = harness.run_sweep(sweep, tmp_path, log=lambda line: None)
    assert len(outcome.finished) == 2 and not outcome.failed
    records = harness.load_records(tmp_path / harness.RESULTS_FILE)
    for record in records:
        std = record["curve"]["diagnostics"]["train/std"]
        assert len(std) == len(record["curve"]["steps"]) == 3, record["key"]["library"]
        assert std[0] == pytest.approx(float(np.exp(-2.0)), rel=1e-6)  # log_std_init, before any update
        assert std[-1] != pytest.approx(std[0], rel=1e-4)  # the updates move it
    text = report.build_report(sweep, records, tmp_path, reps=50, plots=True)
    assert "](exploration_ppo_Pendulum-v1.png)" in text and (tmp_path / "exploration_ppo_Pendulum-v1.png").is_file()


def test_the_env_clock_counts_the_training_envs_through_a_resume(monkeypatch):
    import gymnasium as gym

    from benchmarks import progress
    from benchmarks.env_clock import EnvCpuClock

    monkeypatch.setattr(progress, "evaluate_policy", lambda *args, **kwargs: ([1.0], [1]))
    spec = config.parse_config(tiny_config()).runs[0]
    recorder = progress.CurveRecorder(spec, act=None, env_timed=True)
    recorder.start()
    env = EnvCpuClock(gym.make("CartPole-v1"))
    env.reset(seed=0)
    before = progress.env_cpu_seconds()
    busy = time.process_time() + 0.05
    for _ in range(100_000):  # at least 50 ms of CPU inside step: a clock of ~10 ms ticks sees it
        if env.step(env.action_space.sample())[2]:
            env.reset()
        if time.process_time() > busy:
            break
    spent = progress.env_cpu_seconds() - before
    assert spent > 0.02 and recorder.env_cpu_time() == pytest.approx(spent + before - recorder.env_cpu_start)
    resumed = progress.CurveRecorder(spec, act=None, env_timed=True)
    resumed.resume(json.loads(json.dumps(recorder.state())))
    assert resumed.env_cpu_time() == pytest.approx(recorder.env_cpu_time())
    # Untimed envs (a whole-machine run's), or a checkpoint written before the clock: no figure.
    assert progress.CurveRecorder(spec, act=None).env_cpu_time() is None
    older = {k: v for k, v in recorder.state().items() if k != "env_cpu_time"}
    resumed_older = progress.CurveRecorder(spec, act=None, env_timed=True)
    resumed_older.resume(older)
    assert resumed_older.env_cpu_time() is None


def test_report_gives_the_env_cost_and_the_learners_ratio(tmp_path):
    sweep = config.parse_config(tiny_config(random_baseline=False))
    records = []
    for spec in sweep.runs:
        ours = spec.library == "ours"
        record = _fake_record(spec, 500.0, 1000.0, 2000.0 if ours else 800.0)
        # 512 steps; env 0.25 ms per step on both sides; the rest is the learner's
        record["num_timesteps"] = 512
        record["timing"]["env_cpu_time_s"] = 0.128
        record["timing"]["learner_cpu_steps_per_second"] = 512 / (512 / (2000.0 if ours else 800.0) - 0.128)
        records.append(record)
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    assert "env CPU per step (the training envs' step and reset, timed alike): ours 0.250 ms, sb3 0.250 ms" in text
    assert "the env alone caps the CPU-time ratio ours / sb3 at 5.00x" in text  # (1 / 800 s) / 0.25 ms
    assert "(CPU-time steps/s without the env's time: the learners) = 4.00 [4.00, 4.00]" in text


def test_report_compares_the_mean_of_each_runs_last_evaluations_where_curves_are_long_enough(tmp_path):
    """A noisy final evaluation (a few Atari lives) gets a steadier companion: each run's mean of
    its last 5 curve points, compared across libraries; a speed sweep's short curves get none."""
    sweep = config.parse_config(tiny_config(random_baseline=False))
    records = []
    for spec in sweep.runs:
        record = _fake_record(spec, 500.0, 1000.0, 1000.0)
        tail = [10.0, 20.0, 30.0, 40.0, 50.0] if spec.library == "ours" else [0.0, 10.0, 20.0, 30.0, 40.0]
        record["curve"]["mean"] = [-100.0] + tail  # the first point is left out: ours 30, SB3 20
        records.append(record)
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    assert ("- mean of each run's last 5 evaluations (learning-curve points): ours IQM 30.0 [30.0, 30.0], "
            "sb3 IQM 20.0 [20.0, 20.0]; P(ours > sb3) = 1.00 [1.00, 1.00]") in text
    for record in records:
        record["curve"]["mean"] = record["curve"]["mean"][1:]  # no more points than the window
    assert "last 5 evaluations" not in report.build_report(sweep, records, tmp_path, reps=200, plots=False)


def test_report_names_the_shared_hyperparameters_and_each_variants_own(tmp_path):
    """A variant's settings are its rows' only: the section's hyperparameters line keeps what every
    run shares, and each variant's own settings follow (the first run's settings stood for all)."""
    data = tiny_config(random_baseline=False, seeds=[0])
    data["experiments"][0]["variants"] = {"plain": {"jit_compile": False}, "xla": {"jit_compile": True}}
    sweep = config.parse_config(data)
    records = [_fake_record(spec, 500.0, 1000.0, 1000.0) for spec in sweep.runs]
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    shared = next(line for line in text.splitlines() if line.startswith("- hyperparameters: "))
    assert "`n_epochs=2`" in shared and "jit_compile" not in shared
    assert "- each row's own settings: ours (agents-zoo " in text
    assert "`[plain]`: `jit_compile=False`; ours (agents-zoo " in text and "`[xla]`: `jit_compile=True`" in text


def test_a_variants_environment_reaches_its_runs_process_before_tensorflow(tmp_path, monkeypatch):
    """Process-wide switches (TF's oneDNN kernels) are no hyperparameter: a variant's ``environment``
    is its runs' own, keys them apart, is set by the runner before the run starts and shows in the report."""
    data = tiny_config(random_baseline=False, seeds=[0])
    data["experiments"][0]["variants"] = {"onednn": {"environment": {"TF_ENABLE_ONEDNN_OPTS": "1"}},
                                          "eigen": {"environment": {"TF_ENABLE_ONEDNN_OPTS": "0"}}}
    sweep = config.parse_config(data)
    onednn, eigen, reference = sweep.runs
    assert (onednn.environment, eigen.environment, reference.environment) == (
        {"TF_ENABLE_ONEDNN_OPTS": "1"}, {"TF_ENABLE_ONEDNN_OPTS": "0"}, None)
    assert onednn.hyperparameters == eigen.hyperparameters == reference.hyperparameters
    assert onednn.key_text != eigen.key_text
    assert config.RunSpec.from_json(json.loads(json.dumps(eigen.to_json()))) == eigen

    seen = {}

    def run_spec(spec, *args):
        seen["value"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
        return {"stub": True}

    monkeypatch.setattr(runner, "_die_with_parent", lambda: None)
    monkeypatch.setattr(runner, "run_spec", run_spec)
    for name in (*config.THREAD_VARIABLES, "TF_ENABLE_ONEDNN_OPTS", "SB3_LOGDIR"):
        monkeypatch.setenv(name, "restored by monkeypatch")
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(eigen.to_json()), encoding="utf-8")
    assert runner.main([str(spec_path), str(tmp_path / "result.json")]) == 0
    assert seen == {"value": "0"}

    records = [_fake_record(spec, 500.0, 1000.0, 1000.0) for spec in sweep.runs]
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    assert "`[eigen]`: `TF_ENABLE_ONEDNN_OPTS=0`" in text and "`[onednn]`: `TF_ENABLE_ONEDNN_OPTS=1`" in text


def test_report_gives_the_longer_evaluations_of_kept_policies(tmp_path):
    """Records of ``--evaluate-models`` in the results folder join their runs' sections: each run's
    mean and standard error (of several evaluations of a run, the longest), the IQM where a library
    has more than one run, and P(ours > reference) where both have; a run outside the sweep is left out."""
    sweep = config.parse_config(tiny_config(seeds=[0, 1], random_baseline=False))
    records = [_fake_record(spec, 500.0, 1000.0, 1000.0) for spec in sweep.runs]
    evaluations = [{"key": spec.key, "returns": [4.0, 6.0] if spec.library == "ours" else [1.0, 3.0, 2.0]}
                   for spec in sweep.runs]
    evaluations.append({"key": sweep.runs[0].key, "returns": [0.0]})  # shorter: not the one reported
    evaluations.append({"key": {**sweep.runs[0].key, "seed": 99}, "returns": [100.0]})  # not this sweep's
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False, evaluations=evaluations)
    assert ("- kept policies evaluated again (`agents-zoo bench --evaluate-models`, evaluations.jsonl; mean +- "
            "standard error per run): ours: seed 0 5.0 +- 1.0 (2 episodes), seed 1 5.0 +- 1.0 (2 episodes) "
            "(IQM 5.0 [5.0, 5.0]); sb3: seed 0 2.0 +- 0.6 (3 episodes), seed 1 2.0 +- 0.6 (3 episodes) "
            "(IQM 2.0 [2.0, 2.0])") in text
    assert "- on those evaluations P(ours > sb3) = 1.00 [1.00, 1.00]" in text
    assert "kept policies" not in report.build_report(sweep, records, tmp_path, reps=200, plots=False)


def test_evaluations_without_returns_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / report.EVALUATIONS_FILE
    path.write_text("\n".join(json.dumps(line) for line in [
        {"key": {"seed": 0}, "returns": [1.0, 2]}, {"key": {"seed": 1}}, {"key": {"seed": 2}, "returns": []},
        {"key": {"seed": 3}, "returns": ["1"]}]) + "\n")
    with pytest.warns(UserWarning, match="has no list of returns and is ignored"):
        assert [e["key"]["seed"] for e in report.load_evaluations(path)] == [0]


@pytest.mark.parametrize("reference_final, meaningful", [(8.0, False), (400.0, True)])
def test_a_target_the_random_agent_meets_gets_no_normalized_score_or_threshold(tmp_path, reference_final, meaningful):
    """With no target_return the reference's mean is the target; where the reference learned nothing
    (at or below the random agent) a normalized score and a time-to-threshold would say nothing."""
    data = tiny_config(random_baseline=True)
    data["experiments"][0].pop("target_return", None)
    sweep = config.parse_config(data)
    finals = {"random": 10.0, "ours": 9.0, "sb3": reference_final}
    records = [_fake_record(spec, finals[spec.library if spec.algo != "random" else "random"], 1000.0, 1000.0)
               for spec in sweep.runs]
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    assert ("normalized IQM" in text) == meaningful
    assert ("runs reaching" in text) == meaningful


def test_report_draws_the_gail_discriminator_from_the_records_that_kept_it(tmp_path):
    sweep = config.parse_config(tiny_config(random_baseline=False))
    records = []
    for spec in sweep.runs:
        record = _fake_record(spec, 400.0, 1000.0, 1000.0)
        record["curve"] = {"steps": [0, 256], "mean": [10.0, 400.0]}
        if spec.library == "ours":
            record["curve"]["diagnostics"] = {"disc/reward_mean": [None, 0.4], "disc/reward_expert": [None, 0.9],
                                              "disc/gen_acc": [None, 0.8], "disc/expert_acc": [None, 0.95]}
        records.append({**record, "timing": {**record["timing"], "curve_train_time_s": [0.0, 1.0]}})
    by_library = {library: [r for r in records if r["key"]["library"] == library] for library in ("ours", "sb3")}
    name = report.plot_discriminator("gail", "CartPole-v1", "single-thread", {"ours": by_library["ours"]}, tmp_path)
    assert name == "discriminator_gail_CartPole-v1.png" and (tmp_path / name).stat().st_size > 0
    assert report.plot_discriminator("gail", "CartPole-v1", "single-thread", {"sb3": by_library["sb3"]}, tmp_path) is None


def test_headline_gives_imitation_runs_their_fraction_of_the_expert(tmp_path):
    from benchmarks import headline

    sweep = config.parse_config(tiny_config(random_baseline=True))
    records = []
    for spec in sweep.runs:
        if spec.algo == "random":
            records.append(_fake_record(spec, 20.0, 0.0, None))
        else:
            record = _fake_record(spec, 420.0, 1000.0, 1000.0)
            records.append({**record, "expert_return": 520.0})
    results = tmp_path / "results" / "tiny"
    results.mkdir(parents=True)
    (results / harness.RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    (row,) = headline.headline_rows(tmp_path / "results", reps=200)
    assert row.count("IQM 420.0, 0.80 of the expert") == 2  # (420 - 20) / (520 - 20), both libraries


def test_the_cpu_is_read_from_cpuinfo_and_reports_name_the_machines_also_of_older_records(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Example CPU 9000\n"
                       "flags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\ncpu family\t: 6\nmodel\t\t: 143\n"
                       "model name\t: Example CPU 9000\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert machine.cpu_description(str(cpuinfo)) == {"cpu_model": "Example CPU 9000", "cpu_id": "family 6, model 143",
                                                     "avx512_bf16": True, "amx_bf16": False}
    elsewhere = machine.cpu_description(str(tmp_path / "no-cpuinfo"))  # macOS, Windows: platform.processor()
    assert elsewhere["cpu_model"] and elsewhere["avx512_bf16"] is None and elsewhere["amx_bf16"] is None
    assert elsewhere["cpu_id"] is None
    # A VM names Zen 4 and Zen 5 EPYCs alike: the family and model numbers tell them apart in reports.
    epyc = {"cpu_model": "AMD EPYC", "cpu_id": "family 25, model 17", "cpu_count": 2}
    assert machine.machine_text(epyc) == "AMD EPYC (family 25, model 17), 2 logical CPUs"

    sweep = config.parse_config(tiny_config(random_baseline=False))
    records = [_fake_record(spec, 500.0, 1000.0, 1000.0) for spec in sweep.runs]
    assert len(records) == 4
    for record in records[:2]:
        record["machine"] = {"host": "a", "cpu_count": 2, "cpu_model": "Example CPU 9000", "avx512_bf16": True,
                             "amx_bf16": False}
    records[2]["machine"] = {"host": "b", "cpu_count": 8}  # recorded before the CPU model was; records[3] has none
    text = report.build_report(sweep, records, tmp_path / "report", reps=50, plots=False)
    header = text.split("\n## ")[0]
    assert "- ran on: Example CPU 9000, 2 logical CPUs, bf16: AVX512_BF16 (2 runs)" in header
    assert "- ran on: CPU model not recorded, 8 logical CPUs (1 run)" in header
    assert "- ran on: machine not recorded (1 run)" in header


def test_speed_ratios_compare_runs_made_on_the_same_machine(tmp_path):
    from benchmarks import headline

    sweep = config.parse_config(tiny_config(random_baseline=False))
    fast, slow = ({"cpu_count": 2, "cpu_model": name} for name in ("Example CPU 9000", "Other CPU 100"))
    records = []
    for spec in sweep.runs:  # ours 3000/s on the first machine, SB3 1000/s there and 500/s on the other
        ours = spec.library == "ours"
        speed = 3000.0 if ours else 1000.0 if spec.seed == 0 else 500.0
        records.append({**_fake_record(spec, 500.0, speed, speed), "machine": fast if ours or spec.seed == 0 else slow})
    text = report.build_report(sweep, records, tmp_path / "report", reps=50, plots=False)
    assert "(CPU-time steps/s) = 3.00 [3.00, 3.00]" in text  # not 4.00: SB3's run on the other CPU is left out
    assert "compare the 2 run(s) of ours and 1 of sb3 made on Example CPU 9000, 2 logical CPUs" in text
    results = tmp_path / "results" / "tiny"
    results.mkdir(parents=True)
    (results / "runs.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    assert "| 3.00 [3.00, 3.00]x |" in "\n".join(headline.headline_rows(tmp_path / "results", reps=50))

    for record in records:  # no machine both libraries ran on: no ratio at all
        record["machine"] = fast if record["key"]["library"] == "ours" else slow
    text = report.build_report(sweep, records, tmp_path / "report", reps=50, plots=False)
    assert "- speed ratio" not in text and "- no speed ratio: the two libraries' runs were made on different machines" in text
    (results / "runs.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    assert "n/a (runs on different machines)" in "\n".join(headline.headline_rows(tmp_path / "results", reps=50))

    # The same model name of two CPU generations (a VM's "AMD EPYC"): the family and model numbers keep them apart.
    zen4, zen5 = ({"cpu_count": 2, "cpu_model": "AMD EPYC", "cpu_id": f"family {family}, model 17"} for family in (25, 26))
    for record in records:
        record["machine"] = zen5 if record["key"]["library"] == "ours" else zen4
    text = report.build_report(sweep, records, tmp_path / "report", reps=50, plots=False)
    assert "- speed ratio" not in text and "- no speed ratio: the two libraries' runs were made on different machines" in text


def test_imitation_reports_fractions_of_the_expert_return_final_last_evaluations_and_best():
    spec = config.parse_config(tiny_config(seeds=[0])).runs[0]
    run = _fake_record(spec, 80.0, 1.0, 1.0)
    run["curve"]["mean"] = [0.0, 100.0, 40.0, 60.0, 20.0, 60.0, 20.0]  # the last 5 average 40
    lines = report.expert_fractions({"ours": [run]}, expert=120.0, random=20.0)
    assert lines[0].startswith("| library | fraction of expert: final | mean of last 5 evaluations | best evaluation "
                               "| lowest evaluation after first reaching 0.9 (each run) |")
    assert lines[2].endswith("| 0.60 +- 0.00 | 0.20 +- 0.00 | 0.80 +- 0.00 | never reached |")
    # Runs in seed order; from the first evaluation at 0.9 of the expert on, the lowest one.
    other = _fake_record(config.parse_config(tiny_config(seeds=[1])).runs[0], 80.0, 1.0, 1.0)
    other["curve"]["mean"] = [0.0, 60.0, 110.0, 120.0, 90.0, 118.0]  # 0.4 before 0.9 does not count
    lines = report.expert_fractions({"ours": [other, run]}, expert=120.0, random=20.0)
    assert lines[2].endswith("| never reached, 0.70 |")  # seed 0 first


def test_a_report_says_when_its_runs_imitated_different_experts():
    """Fractions of the expert only compare on one expert's episodes; records made on another
    machine's retrained expert are named, not silently normalized by the first run's."""
    runs = []
    for seed, expert in ((0, 2609.5), (1, 2584.8)):
        run = _fake_record(config.parse_config(tiny_config(seeds=[seed])).runs[0], 80.0, 1.0, 1.0)
        runs.append({**run, "expert_return": expert})
    assert report._target_return({"ours": runs[:1]}, "gail") == (2609.5, "the expert's mean return in the demonstrations")
    target, source = report._target_return({"ours": runs[:1], "imitation": runs[1:]}, "gail")
    assert target == 2584.8 and "imitated different experts (2584.8, 2609.5)" in source


@pytest.mark.bench
def test_both_protocols_end_to_end_and_no_sb3_log_folders(tmp_path, monkeypatch, request):
    """A tiny sweep under both protocols: records carry theirs, the whole-machine SB3 run stepped a
    SubprocVecEnv with all cores' threads, the report has a section per protocol, and no library
    left a log folder in the temporary directory (SB3's default logger makes ``<tmp>/SB3-<date>``)."""
    pytest.importorskip("stable_baselines3")
    # A short folder of its own, not under tmp_path: SubprocVecEnv's forkserver binds a Unix
    # socket under TMPDIR, and socket paths are limited to 107 bytes.
    temporary = Path(tempfile.mkdtemp(prefix="az-"))
    request.addfinalizer(lambda: shutil.rmtree(temporary, ignore_errors=True))
    monkeypatch.setenv("TMPDIR", str(temporary))  # the runs' processes make their temporaries here
    data = tiny_config(seeds=[0], protocol=["single-thread", "whole-machine"])
    data["experiments"][0]["libraries"] = ["sb3"]
    sweep = config.parse_config(data)
    outcome = harness.run_sweep(sweep, tmp_path / "out", workers=2, log=lambda line: None)
    assert not outcome.failed, outcome.failed
    records = {report.protocol_of(r["key"]) + "/" + r["key"]["algo"]: r
               for r in harness.load_records(tmp_path / "out" / harness.RESULTS_FILE)}
    assert sorted(records) == ["single-thread/ppo", "single-thread/random", "whole-machine/ppo"]
    whole, single = records["whole-machine/ppo"], records["single-thread/ppo"]
    assert whole["protocol"] == "whole-machine" and whole["key"]["protocol"] == "whole-machine"
    assert single["protocol"] == "single-thread" and "protocol" not in single["key"]
    assert whole["library_arguments"]["vec_env"] == "SubprocVecEnv"
    assert single["library_arguments"]["vec_env"] == "DummyVecEnv"
    cores = runner.machine_cores()
    assert whole["threads"]["torch_threads"] == cores and whole["threads"]["OMP_NUM_THREADS"] == str(cores)
    assert single["threads"]["torch_threads"] == 1
    assert whole["timing"]["cpu_steps_per_second"] is None and whole["timing"]["steps_per_second"] > 0
    text = report.build_report(sweep, list(records.values()), tmp_path / "out", reps=200, plots=False)
    assert "## PPO on CartPole-v1 (512 steps, single-thread)" in text
    assert "## PPO on CartPole-v1 (512 steps, whole-machine)" in text
    assert f"its {cores} core(s)" in text
    assert not [p.name for p in temporary.iterdir() if p.name.startswith(("SB3-", "imitation-"))]


@pytest.mark.bench
def test_kept_models_replay_the_final_evaluation_and_evaluate_again(tmp_path, capsys):
    """``--models``: each trained run leaves its policy in the library's own format with the run's
    spec (the random baseline trains nothing and keeps nothing); ``--evaluate-models`` loads them
    and, given the final evaluation's episode count, plays it again episode for episode."""
    pytest.importorskip("stable_baselines3")
    from benchmarks import kept_models, trainers

    sweep = config.parse_config(tiny_config(seeds=[0]))
    models = tmp_path / "models"
    lines: list[str] = []
    outcome = harness.run_sweep(sweep, tmp_path / "out", workers=2, log=lines.append, models=models)
    assert not outcome.failed, outcome.failed
    records = {r["key"]["library"]: r for r in harness.load_records(tmp_path / "out" / harness.RESULTS_FILE)
               if r["key"]["algo"] == "ppo"}
    assert len(outcome.finished) == 3 and sorted(records) == ["ours", "sb3"]  # and the random baseline
    folders = {spec.library: models / harness.run_folder_name(spec) for spec in sweep.runs if spec.algo == "ppo"}
    assert sorted(p.name for p in models.iterdir()) == sorted(folder.name for folder in folders.values())
    assert sorted(p.name for p in folders["ours"].iterdir()) == [trainers.OUR_MODEL_FILE, runner.SPEC_FILE]
    assert sorted(p.name for p in folders["sb3"].iterdir()) == [trainers.REFERENCE_MODEL_FILE, runner.SPEC_FILE]
    assert any(f"model in {folders['ours']}" in line for line in lines)

    final_episodes = sweep.runs[0].evaluation.n_final_episodes
    again = {record["key"]["library"]: record for record in kept_models.evaluate_kept_models(
        models, final_episodes, log=lambda line: None)}
    for library, record in records.items():
        assert again[library]["key"] == record["key"]
        assert (again[library]["returns"], again[library]["lengths"]) == (
            record["final"]["returns"], record["final"]["lengths"])

    assert cli.main(["--evaluate-models", str(models), "--episodes", "5"]) == 0
    printed = capsys.readouterr().out
    assert "| CartPole-v1__ppo__sb3__seed0 | 5 |" in printed and "| ppo | CartPole-v1 | single-thread | ours | 1 |" in printed
    kept = [json.loads(line) for line in (models / kept_models.EVALUATIONS_FILE).read_text().splitlines()]
    assert [len(record["returns"]) for record in kept] == [final_episodes] * 2 + [5] * 2

    # Evaluated before with as many episodes: the records are reused, nothing is played or appended.
    with mock.patch.object(kept_models, "evaluate_policy", side_effect=AssertionError("played again")):
        assert cli.main(["--evaluate-models", str(models), "--episodes", "5"]) == 0
    assert "(evaluated before: evaluations.jsonl)" in capsys.readouterr().out
    assert len((models / kept_models.EVALUATIONS_FILE).read_text().splitlines()) == 4

    # A record counts the episodes it holds, as the report does, not its "episodes" field.
    path = models / kept_models.EVALUATIONS_FILE
    path.write_text("".join(json.dumps({**record, "episodes": 7}) + "\n" for record in kept))
    with mock.patch.object(kept_models, "evaluate_policy", side_effect=AssertionError("played again")):
        assert len(kept_models.evaluate_kept_models(models, 5, log=lambda line: None)) == 2


def test_evaluate_models_names_what_is_wrong(tmp_path, capsys):
    assert cli.main(["--evaluate-models", str(tmp_path)]) == 2
    assert f"no kept models in {tmp_path}" in capsys.readouterr().err
    assert cli.main(["--evaluate-models", str(tmp_path), "--episodes", "0"]) == 2
    assert "--episodes must be a positive int, got 0" in capsys.readouterr().err
    assert cli.main(["--config", "quick", "--episodes", "5"]) == 2
    assert "--episodes goes with --evaluate-models" in capsys.readouterr().err


def test_a_sweep_keeps_its_expert_episodes_and_gives_them_back_when_the_cache_is_lost(tmp_path, monkeypatch):
    """Expert training is seeded, not bitwise the same on another CPU: a later run of a sweep
    (imitation's, a new seed) must read the episodes its finished runs imitated, not a retrained
    expert's, so the sweep keeps them beside its results and restores a lost cache from there."""
    from types import SimpleNamespace

    from agents_zoo.demonstrations import Demonstrations, load_demonstrations, save_demonstrations

    monkeypatch.setenv("AGENTS_ZOO_CACHE", str(tmp_path / "cache"))
    episodes = Demonstrations(observations=np.arange(12, dtype=np.float32).reshape(1, 4, 3),
                              actions=np.zeros((1, 4), np.int64), rewards=np.ones((1, 4), np.float32))
    trained: list[Path] = []

    def train_expert(spec, path, log):
        trained.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_demonstrations(path, episodes)

    monkeypatch.setattr(harness, "_make_demonstrations", train_expert)
    spec = SimpleNamespace(env="Pendulum-v1", demonstrations={"expert": "ppo", "expert_timesteps": 64,
                                                              "n_episodes": 1, "seed": 0})
    output, lines = tmp_path / "results", []
    harness.prepare_demonstrations([spec, spec], output, lines.append)
    (cache_file,) = trained
    kept = output / harness.DEMONSTRATIONS_FOLDER / cache_file.name
    assert kept.read_bytes() == cache_file.read_bytes()

    cache_file.unlink()  # a new machine
    harness.prepare_demonstrations([spec], output, lines.append)
    assert trained == [cache_file], "the expert was trained again"
    np.testing.assert_array_equal(load_demonstrations(cache_file).observations, episodes.observations)
    assert lines == [f"  expert demonstrations for Pendulum-v1: the sweep's own, from {kept}"]

    other = Demonstrations(observations=np.zeros((1, 4, 3), np.float32), actions=np.zeros((1, 4), np.int64),
                           rewards=np.zeros((1, 4), np.float32))
    save_demonstrations(cache_file, other)  # a cache holding another machine's retrained expert
    harness.prepare_demonstrations([spec], output, lines.append)
    assert cache_file.read_bytes() == kept.read_bytes() and trained == [cache_file]


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


def shipped_gail_config_with_imitation(tmp_path, monkeypatch):
    """The shipped gail config, for a test that runs imitation: skipped unless its reference
    environment is built; tiny experts' episodes go to a cache in ``tmp_path``, not the user's
    (the environment itself is shared)."""
    from benchmarks import reference_envs

    if not (reference_envs.environment_folder("imitation") / reference_envs.COMPLETE_MARKER).is_file():
        pytest.skip("the imitation reference environment is not built (agents-zoo bench --config gail-quick builds it)")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "reference-envs").symlink_to(reference_envs.cache_root(), target_is_directory=True)
    monkeypatch.setenv("AGENTS_ZOO_CACHE", str(cache))
    return json.loads(config.resolve_config_path("gail").read_text())


def test_imitations_generator_anneals_over_the_whole_budget_not_each_round():
    """imitation calls the generator's learn() once per round; SB3 alone would count each call as a
    whole run and train every round at progress 0 (a lin_x rate of 0). Ours anneals over the budget."""
    sb3 = pytest.importorskip("stable_baselines3")
    from benchmarks.trainers import whole_budget_progress

    budget, round_steps = 256, 64

    def learner(algorithm_class):
        return algorithm_class("MlpPolicy", "CartPole-v1", n_steps=round_steps, batch_size=64, n_epochs=1,
                               learning_rate=translate.LinearSchedule(1e-3), seed=0, device="cpu")

    annealed, plain = learner(whole_budget_progress(sb3.PPO, budget)), learner(sb3.PPO)
    rates, plain_progress = [], []
    for _ in range(budget // round_steps):
        for model in (annealed, plain):
            model.learn(round_steps, reset_num_timesteps=False)  # as imitation's train_gen
        rates.append(annealed.lr_schedule(annealed._current_progress_remaining))
        plain_progress.append(plain._current_progress_remaining)
    assert rates == pytest.approx([1e-3 * (1 - steps / budget) for steps in (64, 128, 192, 256)])
    assert plain_progress == [0.0] * 4
    assert type(annealed).__name__ == "PPO"


@pytest.mark.slow
@pytest.mark.bench
def test_an_imitation_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    """imitation's GAIL checkpoints at round ends (generator, VecNormalize, reward net and optimizer,
    counters, replay buffer, RNGs); a run given a longer budget continues from there, its curve too.
    Its kept generator (``--model-folder``) loads here, in SB3 of this environment, and plays the
    final evaluation again."""
    from benchmarks import reference_envs, trainers

    data = shipped_gail_config_with_imitation(tmp_path, monkeypatch)
    experiment = data["experiments"][1]
    assert experiment["env"] == "Pendulum-v1"
    experiment.pop("variants")
    experiment.update(budget=1024, seeds=[0], libraries=["imitation"],
                      evaluation={"eval_every": 512, "n_eval_episodes": 1, "n_final_episodes": 1})
    experiment["demonstrations"].update(expert_timesteps=2048, n_episodes=2)
    experiment["hyperparameters"].update(n_envs=2, n_steps=128, n_epochs=1, learning_rate="lin_1e-3",
                                         clip_range="lin_0.2", normalize=True, demo_batch_size=64)
    data.update(experiments=[experiment], checkpoint_every=512, random_baseline=False)
    (spec,) = config.parse_config(data).runs
    trainers.ensure_demonstrations(spec.env, spec.demonstrations)
    python, extra = reference_envs.interpreter_for("imitation")
    checkpoints = tmp_path / "checkpoints"

    def run(spec_json, name, *more):
        spec_path, result_path = tmp_path / f"{name}.json", tmp_path / f"{name}.result.json"
        spec_path.write_text(json.dumps(spec_json))
        completed = subprocess.run([python, "-m", "benchmarks.runner", str(spec_path), str(result_path), str(checkpoints),
                                    *more],
                                   env={**os.environ, **extra}, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads(result_path.read_text())

    first = run(spec.to_json(), "first")  # 4 rounds of 2 x 128 steps
    assert first["resumed_from_step"] is None and first["num_timesteps"] == 1024
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-1024"]
    assert first["library_arguments"]["vec_normalize"] == {"gamma": 0.9}
    second = run({**spec.to_json(), "budget": 2048}, "second", "--model-folder", str(tmp_path / "model"))
    assert second["resumed_from_step"] == 1024 and second["num_timesteps"] == 2048
    assert second["curve"]["steps"] == [0, 512, 1024, 1536, 2048]
    assert second["curve"]["mean"][:3] == first["curve"]["mean"]  # the evaluations before the checkpoint

    from benchmarks import kept_models

    ((folder, kept),) = kept_models.kept_runs(tmp_path)
    assert folder == tmp_path / "model" and kept.budget == 2048
    assert sorted(p.name for p in folder.iterdir()) == ["model.zip", "spec.json", "vecnormalize.pkl"]
    returns, lengths = runner.evaluate_policy(kept_models.load_policy(folder, kept), kept.env, kept.env_kwargs,
                                              kept.evaluation.n_final_episodes, kept.seed)
    # imitation's environment has its own torch: Pendulum's continuous actions agree to float32 rounding
    assert returns == pytest.approx(second["final"]["returns"], rel=1e-6) and lengths == second["final"]["lengths"]


@pytest.mark.slow
@pytest.mark.bench
def test_gail_sweep_shrunk_runs_both_variants_and_imitation(tmp_path, monkeypatch):
    """The shipped gail config's CartPole experiment, shrunk to seconds: our expert's episodes
    feed ours[matched], ours[tuned] and imitation (in its own environment, when it is built);
    the report gives each one's fraction of the expert's return."""
    pytest.importorskip("seals")
    data = shipped_gail_config_with_imitation(tmp_path, monkeypatch)
    experiment = data["experiments"][0]
    assert experiment["env"] == "seals/CartPole-v0"
    experiment.update(budget=1024, seeds=[0], evaluation={"eval_every": 512, "n_eval_episodes": 2, "n_final_episodes": 3})
    experiment["demonstrations"].update(expert_timesteps=2048, n_episodes=4)
    experiment["hyperparameters"].update(n_steps=32, demo_batch_size=128)
    experiment["variants"]["tuned"]["demo_batch_size"] = 128
    data["experiments"] = [experiment]
    sweep = config.parse_config(data)
    outcome = harness.run_sweep(sweep, tmp_path / "out", workers=2, log=lambda line: None)
    assert not outcome.failed, outcome.failed
    records = harness.load_records(tmp_path / "out" / harness.RESULTS_FILE)
    labels = sorted(report.run_label(r["key"]) for r in records if r["key"]["algo"] == "gail")
    assert labels == ["imitation", "ours[matched]", "ours[tuned]"]
    experts = {r["expert_return"] for r in records if r["key"]["algo"] == "gail"}
    assert len(experts) == 1  # the same episodes for all three
    text = report.build_report(sweep, records, tmp_path / "out", reps=200, plots=False)
    assert "| library | fraction of expert: final | mean of last 5 evaluations | best evaluation |" in text
    assert "`[matched]`" in text and "`[tuned]`" in text and "imitation 1.0.1 (torch)" in text


def test_cnn_step_benchmark_times_each_kernel_setting_in_its_own_process(tmp_path):
    """``bench_cnn_step.py`` (the README's oneDNN, Eigen and bf16 step times): each setting's
    processes get its TF_ENABLE_ONEDNN_OPTS, and the table names the CPU and each setting against float32."""
    from benchmarks import bench_cnn_step

    result = bench_cnn_step.main(["--steps", "1", "--repeats", "1", "--settings", "tf-float32-onednn",
                                  "tf-float32-eigen", "--output-dir", str(tmp_path)])
    rows = result["settings"]
    assert list(rows) == ["tf-float32-onednn", "tf-float32-eigen"]
    assert all(row["median_ms"] > 0 and len(row["repeats_ms"]) == 1 for row in rows.values())
    assert rows["tf-float32-eigen"]["environment"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    (markdown,) = tmp_path.glob("*.md")
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith(f"# Nature-CNN train step on 256 frames: {result['machine']}")
    assert "| TF float32, oneDNN kernels | " in text and " | 1.00x |" in text
    assert json.loads(markdown.with_suffix(".json").read_text(encoding="utf-8")) == result
    missing = {**result, "settings": {**rows, "torch-float32": {"label": "torch float32", "median_ms": None}}}
    assert "| torch float32 | not installed | | |" in bench_cnn_step.render_markdown(missing)
