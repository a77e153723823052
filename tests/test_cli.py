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


@pytest.mark.parametrize("algo, config, unit", [
    ("ppo", {"n_steps": 16, "n_envs": 2, "batch_size": 16, "n_epochs": 1}, 32),
    ("a2c", {"n_steps": 5, "n_envs": 2}, 10),
    ("dqn", {"train_freq": 4, "n_envs": 1, "learning_starts": 1000}, 4),
])
def test_training_runs_whole_iterations_and_the_bar_and_cli_say_where_it_ends(algo, config, unit, capsys):
    """learn() ends at the first whole iteration past the budget (as SB3's agents do); planned_steps
    says how many steps, the progress bar counts to there, and the CLI says why when training passed --steps."""
    import agents_zoo
    from agents_zoo.cli import note_whole_iterations
    from agents_zoo.core import callbacks

    agent = agents_zoo.get_agent_class(algo)("CartPole-v1", seed=0, **config)
    assert agent.steps_per_iteration == unit
    assert agent.planned_steps(unit * 3) == unit * 3 and agent.planned_steps(unit * 3 + 1) == unit * 4
    totals = []
    original = callbacks.ProgressBarCallback.on_training_start

    def record_total(self, total_timesteps):
        original(self, total_timesteps)
        totals.append(self.bar.total)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(callbacks.ProgressBarCallback, "on_training_start", record_total)
        agent.learn(unit + 1, progress_bar=True)
        assert agent.num_timesteps == 2 * unit and totals == [2 * unit]
        assert agent.planned_steps(1) == unit
        agent.learn(1, progress_bar=True, reset_num_timesteps=False)  # continues: one more iteration
        assert agent.num_timesteps == 3 * unit and totals == [2 * unit, unit]
    capsys.readouterr()
    note_whole_iterations(agent, 3 * unit)  # ended on it: nothing to say
    note_whole_iterations(agent, 3 * unit - 1)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"note: {algo} trained to step {3 * unit:,}, past --steps {3 * unit - 1:,}: it trains in whole "
                   f"iterations of {unit:,} env steps, as SB3 does; a multiple of {unit:,} ends on it"]


def test_gail_runs_whole_rollouts_of_its_learner():
    from agents_zoo.agents.gail import GAIL

    agent = GAIL("Pendulum-v1", seed=0, n_envs=2, learner_kwargs={"n_steps": 8, "batch_size": 16})
    assert agent.steps_per_iteration == agent.learner.steps_per_iteration == 16


def test_a_progress_bar_passed_in_counts_the_planned_steps_too():
    from agents_zoo.agents.a2c import A2C
    from agents_zoo.core.callbacks import ProgressBarCallback

    bar = ProgressBarCallback()
    totals = []
    bar.on_step = lambda: totals.append(bar.bar.total) or True  # the bar, while training runs
    agent = A2C("CartPole-v1", seed=0, n_steps=5, n_envs=2)
    agent.learn(11, callback=bar)
    assert agent.num_timesteps == 20 and set(totals) == {20}
