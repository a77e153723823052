"""Today's stack: env ids from any registering package, quiet start-up, gymnasium 0.29 and 1.x
vector envs, the reference libraries' environments and the harness's variants and CPU times."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from agents_zoo.core import envs as envs_module
from agents_zoo.core.envs import UnknownEnvError, check_env_id, env_id_of, make_vec_env
from agents_zoo.core.quiet_startup import STARTUP_NOISE
from benchmarks import config as config_module
from benchmarks import reference_envs

MARKER_MODULE = '''
import pathlib, gymnasium as gym
pathlib.Path({marker!r}).write_text("imported")
gym.register("{env_id}", entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=50)
'''


@pytest.fixture
def registering_module(tmp_path, monkeypatch):
    """A module on sys.path that registers an env id and leaves a marker file when imported."""
    def make(name: str, env_id: str) -> Path:
        marker = tmp_path / f"{name}.imported"
        (tmp_path / f"{name}.py").write_text(MARKER_MODULE.format(marker=str(marker), env_id=env_id))
        return marker

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in [n for n in sys.modules if n.startswith("zoo_test_envs")]:
        del sys.modules[name]


# ----------------------------------------------------------------------------- env ids
def test_module_prefix_imports_the_module_then_finds_the_id(registering_module):
    marker = registering_module("zoo_test_envs_a", "ZooTestA-v0")
    check_env_id("zoo_test_envs_a:ZooTestA-v0")
    assert marker.exists() and "ZooTestA-v0" in gym.registry
    assert env_id_of("zoo_test_envs_a:ZooTestA-v0") == "ZooTestA-v0"  # files keep the plain id


def test_namespace_imports_its_package(registering_module):
    marker = registering_module("zoo_test_envs_b", "zoo_test_envs_b/Pole-v0")
    check_env_id("zoo_test_envs_b/Pole-v0")
    assert marker.exists()


def test_ids_from_files_never_import_a_module(registering_module):
    module_marker = registering_module("zoo_test_envs_c", "ZooTestC-v0")
    namespace_marker = registering_module("zoo_test_envs_d", "zoo_test_envs_d/Pole-v0")
    with pytest.raises(UnknownEnvError, match=r"'model.zip': env_id 'zoo_test_envs_c:ZooTestC-v0' names a module"):
        check_env_id("zoo_test_envs_c:ZooTestC-v0", source="model.zip")
    with pytest.raises(UnknownEnvError, match=r"'model.zip': env_id 'zoo_test_envs_d/Pole-v0' is not a registered"):
        check_env_id("zoo_test_envs_d/Pole-v0", source="model.zip")
    assert not module_marker.exists() and not namespace_marker.exists()


def test_missing_package_is_named_with_the_install_hint():
    with pytest.raises(UnknownEnvError, match=r"'no_such_env_pkg/Thing-v0' needs the package.*pip install no_such_env_pkg"):
        check_env_id("no_such_env_pkg/Thing-v0")


def test_seals_ids_work_in_train_through_the_cli(tmp_path, capsys):
    pytest.importorskip("seals")
    from agents_zoo.cli import main

    assert main(["train", "random", "seals/CartPole-v0", "--steps", "200", "--no-progress", "--eval-episodes", "1",
                 "--save", str(tmp_path / "r.zip")]) == 0
    assert main(["evaluate", str(tmp_path / "r.zip"), "--episodes", "1"]) == 0
    assert "random on seals/CartPole-v0" in capsys.readouterr().out


# ----------------------------------------------------------------------------- vector envs
def test_vector_envs_reset_in_the_same_step_on_every_gymnasium():
    vec = make_vec_env("CartPole-v1", 2, seed=0)
    ended = False
    for _ in range(200):
        obs, _, terminated, truncated, infos = vec.step(np.zeros(2, dtype=np.int64))
        done = terminated | truncated
        if done.any():
            i = int(np.flatnonzero(done)[0])
            final = infos[envs_module.FINAL_OBSERVATION_KEY][i]
            assert abs(final[2]) > 0.2 or abs(final[0]) > 2.4  # the ended episode's last state
            assert abs(obs[i][2]) < 0.06  # already the next episode's first observation
            ended = True
            break
    assert ended


@pytest.mark.skipif(envs_module.AutoresetMode is None, reason="gymnasium 0.29 has only same-step autoreset")
def test_a_next_step_vector_env_is_refused_with_the_fix():
    vec = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"):
        make_vec_env(vec, 1)


def test_an_agent_takes_n_envs_from_a_ready_env():
    from agents_zoo.agents.a2c import A2C
    from agents_zoo.agents.gail import GAIL
    from wrappers.autoreset import sync_vector_env

    vec = sync_vector_env([lambda: gym.make("CartPole-v1")] * 3)
    assert A2C(vec).n_envs == 3  # as SB3 takes a VecEnv's num_envs
    assert A2C(vec, {"n_steps": 4}).n_envs == 3
    assert GAIL(gym.make("Pendulum-v1")).n_envs == 1  # a gym.Env is one env, whatever the default (8)
    with pytest.raises(ValueError, match="the vector env has 3 envs but n_envs=2 was asked for"):
        A2C(vec, n_envs=2)
    with pytest.raises(ValueError, match="the vector env has 3 envs but n_envs=2 was asked for"):
        A2C(vec, {"n_envs": 2})


# ----------------------------------------------------------------------------- quiet start-up
def test_startup_noise_filter_keeps_real_errors():
    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1795909380.766918    4525 port.cc:153] oneDNN custom operations are on.",
             "I0000 00:00:1795909380.771374    4525 cudart_stub.cc:31] Could not find cuda drivers",
             "E0000 00:00:1795909389.382727    4567 cuda_platform.cc:52] failed call to cuInit: INTERNAL"]
    assert all(STARTUP_NOISE.match(line) for line in noise)
    assert not STARTUP_NOISE.match("E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor")
    assert not STARTUP_NOISE.match("Traceback (most recent call last):")


def test_cli_prints_no_tensorflow_log_lines():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    result = subprocess.run([sys.executable, "-m", "agents_zoo.cli", "list", "--what", "agents"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "ppo" in result.stdout
    assert result.stderr == ""


def test_train_writes_tensorboard_events(tmp_path):
    from agents_zoo.cli import main

    assert main(["train", "ppo", "CartPole-v1", "--steps", "512", "--n-envs", "2", "--no-progress",
                 "--eval-episodes", "0", "--log-dir", str(tmp_path / "runs"), "--config", "n_steps=128"]) == 0
    assert list((tmp_path / "runs").rglob("events.out.tfevents.*"))


# ----------------------------------------------------------------------------- reference environments
def test_libraries_of_this_stack_run_here():
    assert reference_envs.interpreter_for("sb3") == (sys.executable, {})
    assert reference_envs.interpreter_for("ours") == (sys.executable, {})


def test_imitation_runs_in_its_built_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTS_ZOO_CACHE", str(tmp_path))
    folder = reference_envs.environment_folder("imitation")
    assert folder.parent == tmp_path / "reference-envs"
    (folder / "bin").mkdir(parents=True)
    (folder / reference_envs.COMPLETE_MARKER).write_text("")
    python, extra_env = reference_envs.interpreter_for("imitation")
    assert python == str(folder / "bin" / "python")
    import agents_zoo

    assert str(Path(agents_zoo.__file__).resolve().parent.parent) in extra_env["PYTHONPATH"].split(os.pathsep)


def test_a_failed_build_says_what_failed_and_keeps_no_half_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTS_ZOO_CACHE", str(tmp_path))

    def failing_run(command, **kwargs):
        if "pip" in command:
            return subprocess.CompletedProcess(command, 1, stdout="ERROR: No matching distribution found for imitation==1.0.1")
        return subprocess.CompletedProcess(command, 0, stdout="")

    monkeypatch.setattr(reference_envs.subprocess, "run", failing_run)
    lines: list[str] = []
    with pytest.raises(reference_envs.ReferenceEnvironmentError, match="(?s)No matching distribution.*delete"):
        reference_envs.ensure_environment("imitation", lines.append)
    assert "building the imitation reference environment" in lines[0]
    assert not (reference_envs.environment_folder("imitation") / reference_envs.COMPLETE_MARKER).exists()


def test_pinned_reference_versions_ship_with_the_package():
    pins = reference_envs.pin_text("imitation")
    for pin in ("imitation==1.0.1", "stable-baselines3==2.2.1", "gymnasium==0.29.1", "numpy==1.26.4"):
        assert pin in pins.replace("stable_baselines3", "stable-baselines3")


# ----------------------------------------------------------------------------- harness variants
def variant_config() -> dict:
    return {"name": "variants", "seeds": [0, 1], "random_baseline": False,
            "evaluation": {"eval_every": 100, "n_eval_episodes": 1, "n_final_episodes": 1},
            "experiments": [{"algo": "dqn", "env": "CartPole-v1", "budget": 200,
                             "hyperparameters": {"learning_starts": 50},
                             "variants": {"double": {"double_q": True}, "vanilla": {"double_q": False}}}]}


def test_variants_run_beside_one_reference_configuration():
    sweep = config_module.parse_config(variant_config())
    labels = sorted({spec.library_label for spec in sweep.runs})
    assert labels == ["ours[double]", "ours[vanilla]", "sb3"]
    assert len(sweep.runs) == 6
    double = next(s for s in sweep.runs if s.variant == "double")
    assert double.hyperparameters == {"learning_starts": 50, "double_q": True} and double.key["variant"] == "double"
    reference = next(s for s in sweep.runs if s.library == "sb3")
    assert "variant" not in reference.key and reference.hyperparameters == {"learning_starts": 50}


def test_a_bad_variant_names_it():
    config = variant_config()
    config["experiments"][0]["variants"]["double"] = {"double_qq": True}
    with pytest.raises(config_module.ConfigError, match=r"variants.double: .*double_qq"):
        config_module.parse_config(config)


@pytest.mark.bench
def test_records_carry_cpu_time_and_the_report_labels_variants(tmp_path):
    pytest.importorskip("stable_baselines3")
    from benchmarks import harness, report

    sweep = config_module.parse_config(variant_config() | {"seeds": [0]})
    outcome = harness.run_sweep(sweep, tmp_path, workers=2, log=lambda line: None)
    assert not outcome.failed, outcome.failed
    records = harness.load_records(tmp_path / harness.RESULTS_FILE)
    assert len(records) == 3
    for record in records:
        timing = record["timing"]
        assert timing["train_cpu_time_s"] > 0 and timing["cpu_steps_per_second"] > 0
        # Both libraries' training envs were timed; what is left of the CPU time is the learner's.
        assert 0 < timing["env_cpu_time_s"] < timing["train_cpu_time_s"]
        assert timing["learner_cpu_steps_per_second"] > timing["cpu_steps_per_second"]
    text = report.build_report(sweep, records, tmp_path, reps=200, plots=False)
    assert "`[double]`" in text and "`[vanilla]`" in text
    assert "speed ratio ours[double] / sb3 (CPU-time steps/s)" in text
    assert "- sb3 ran with" in text and "stable-baselines3 " in text
