"""Every CLI command on a tiny budget (the agent-specific ones live with their agents)."""

import subprocess
import sys

import pytest

from agents_zoo.cli import main

CLI = [sys.executable, "-m", "agents_zoo.cli"]


def test_help_lists_every_command():
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("list", "train", "evaluate", "bench", "expert", "generative"):
        assert command in result.stdout


def test_list_shows_random_with_its_distribution(capsys):
    assert main(["list", "--what", "agents"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("random"))
    assert "agents-zoo" in line and "agents_zoo.agents.random_agent:RandomAgent" in line


def test_train_save_resume_evaluate(tmp_path, capsys):
    model = tmp_path / "random.zip"
    assert main(["train", "random", "CartPole-v1", "--steps", "400", "--seed", "0", "--n-envs", "2",
                 "--save", str(model), "--checkpoint-every", "100", "--no-progress", "--eval-episodes", "2"]) == 0
    assert model.exists()
    assert main(["train", "random", "CartPole-v1", "--steps", "1000", "--save", str(model), "--resume",
                 "--no-progress", "--eval-episodes", "0"]) == 0
    out = capsys.readouterr().out
    assert "resuming random from" in out and "at step 400 of 1000" in out
    from agents_zoo.agents.random_agent import RandomAgent

    assert RandomAgent.load(model).num_timesteps == 1000
    assert main(["evaluate", str(model), "--episodes", "2", "--seed", "1"]) == 0
    assert "random on CartPole-v1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "random", "CartPol-v1", "--steps", "10"], "did you mean 'CartPole-v1'"),
    (["train", "randm", "CartPole-v1"], "Did you mean 'random'?"),
    (["train", "random", "CartPole-v1", "--config", "n_env=2"], "did you mean 'n_envs'?"),
    (["train", "random", "CartPole-v1", "--config", "n_envs"], "--config expects KEY=VALUE, got 'n_envs'"),
    (["train", "random", "CartPole-v1", "--resume"], "--resume and --checkpoint-every need --save"),
    (["evaluate", "/nonexistent/model.zip"], "no archive at '/nonexistent/model.zip'"),
])
def test_bad_input_is_answered_with_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_list_config_shows_documented_defaults(capsys):
    assert main(["train", "random", "--list-config"]) == 0
    out = capsys.readouterr().out
    assert "n_envs" in out and "number of environments" in out
