"""Every user error through the CLI: one line naming the bad value and what was expected, exit 2,
no traceback, and no work done before a bad destination is found."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agents_zoo.cli import main

CLI = [sys.executable, "-m", "agents_zoo.cli"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("kind", ["parent_is_a_file", "is_a_folder", "read_only"])
def test_train_checks_save_before_training(tmp_path, capsys, kind):
    if kind == "parent_is_a_file":
        (tmp_path / "file").write_text("x")
        save, expected = tmp_path / "file" / "model.zip", "is a file, not a folder"
    elif kind == "is_a_folder":
        save, expected = tmp_path, "is a folder, expected a file path"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        save, expected = folder / "model.zip", "cannot be written"
    # A budget that would take minutes: the refusal must come before any of it.
    assert main(["train", "ppo", "CartPole-v1", "--steps", "10000000", "--save", str(save), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("agents-zoo train: error: --save") and expected in line


def test_resume_refuses_settings_that_differ_from_the_checkpoint(tmp_path, capsys):
    model = tmp_path / "ppo.zip"
    assert main(["train", "ppo", "CartPole-v1", "--steps", "256", "--n-envs", "2", "--config", "n_steps=64",
                 "--save", str(model), "--no-progress", "--eval-episodes", "0"]) == 0
    capsys.readouterr()
    assert main(["train", "ppo", "CartPole-v1", "--steps", "512", "--save", str(model), "--resume", "--no-progress",
                 "--config", "learning_rate=0.1", "--n-envs", "4"]) == 2
    line = one_error_line(capsys)
    assert "learning_rate=0.1 (checkpoint: 0.0003)" in line and "n_envs=4 (checkpoint: 2)" in line
    # The same settings are fine.
    assert main(["train", "ppo", "CartPole-v1", "--steps", "512", "--save", str(model), "--resume", "--no-progress",
                 "--n-envs", "2", "--eval-episodes", "0"]) == 0


def test_dqn_resume_without_replay_buffer_says_so(tmp_path, capsys):
    model = tmp_path / "dqn.zip"
    assert main(["train", "dqn", "CartPole-v1", "--steps", "300", "--config", "learning_starts=100",
                 "--save", str(model), "--no-progress", "--eval-episodes", "0"]) == 0
    capsys.readouterr()
    assert main(["train", "dqn", "CartPole-v1", "--steps", "400", "--save", str(model), "--resume", "--no-progress",
                 "--eval-episodes", "0"]) == 0
    assert "holds no replay buffer" in capsys.readouterr().err


def test_render_without_a_display_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["evaluate", str(tmp_path / "any.zip"), "--render"]) == 2
    assert "--render needs a display" in one_error_line(capsys)


@pytest.mark.parametrize("arguments, expected", [
    (["--envs", "NoSuchGame"], "NoSuchGame"),
    (["--image-size", "7"], "image_size must be >= 8, got 7"),
    (["--out", "FILE"], "is a file, expected a folder"),
])
def test_generative_train_user_errors_are_one_line(tmp_path, capsys, arguments, expected):
    (tmp_path / "FILE").write_text("x")
    arguments = [str(tmp_path / "FILE") if a == "FILE" else a for a in arguments]
    base = {"--out": str(tmp_path / "out"), "--steps": "1", "--frames": "8", "--quiet": None}
    for key in arguments[::2]:
        base.pop(key, None)
    argv = ["generative", "train", "vae", *arguments]
    for key, value in base.items():
        argv += [key] if value is None else [key, value]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("agents-zoo generative train: error:") and expected in line


def test_generative_negative_seed_is_an_argument_error():
    result = subprocess.run([*CLI, "generative", "train", "vae", "--out", "x", "--seed", "-1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "expected a non-negative int, got '-1'" in result.stderr
    assert "Traceback" not in result.stderr


def test_gail_without_demonstrations_is_one_line(capsys):
    assert main(["train", "gail", "CartPole-v1", "--steps", "256", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "GAIL has no demonstrations" in line


def test_crafted_file_through_evaluate_is_one_line(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = subprocess.run([*CLI, "evaluate", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agents-zoo evaluate: error:") and "bad.zip" in lines[0]


def test_evaluate_on_an_env_with_other_spaces_names_both(tmp_path, capsys):
    model = tmp_path / "cartpole.zip"
    assert main(["train", "random", "CartPole-v1", "--steps", "100", "--save", str(model), "--no-progress",
                 "--eval-episodes", "0"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--env", "Pendulum-v1", "--episodes", "1"]) == 2
    line = one_error_line(capsys)
    assert "trained on observation space Box" in line and "'Pendulum-v1' has Box" in line


def test_evaluation_cuts_episodes_of_envs_without_a_time_limit():
    import gymnasium as gym

    import agents_zoo

    agent = agents_zoo.make("random", "CartPole-v1", seed=0)
    unlimited = lambda: gym.make("CartPole-v1", max_episode_steps=None).unwrapped  # noqa: E731
    result = agent.evaluate(3, env=unlimited, max_episode_steps=5)
    assert (result.lengths <= 5).all() and len(result.returns) == 3


def test_train_refuses_a_full_or_read_only_destination_before_training(tmp_path, capsys, monkeypatch):
    """A full disk or a read-only filesystem found after hours of training would lose the run."""
    import errno
    import shutil

    from agents_zoo.core import cli_args

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(cli_args.shutil, "disk_usage", lambda path: usage._replace(free=1024))
    assert main(["train", "ppo", "CartPole-v1", "--steps", "10000000", "--save", str(tmp_path / "m.zip")]) == 2
    assert "only 0.0 MiB free on its filesystem, expected at least 64 MiB" in one_error_line(capsys)
    monkeypatch.undo()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(cli_args.tempfile, "NamedTemporaryFile", read_only)
    assert main(["train", "ppo", "CartPole-v1", "--steps", "10000000", "--save", str(tmp_path / "m.zip")]) == 2
    assert "cannot be written: Read-only file system" in one_error_line(capsys)
