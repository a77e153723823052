"""What a saved model or checkpoint restores is checked like user input (core.restore_checks).

NaN/inf weights, optimizer state or normalization statistics are refused by name; a replay
buffer whose rewards are NaN, whose actions lie outside the action space, whose observations
have another shape or kind, or whose terminations are not 0/1 is refused before anything is
assigned; real files (including prioritized n-step and frame buffers) still load.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pytest
from gymnasium import spaces

import agents_zoo
from agents_zoo.cli import main
from agents_zoo.core.restore_checks import RestoredArrayError, check_replay_arrays
from agents_zoo.core.serialization import ArchiveError, load_archive


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _replace_arrays(path, out, **changes):
    """Copy an archive, replacing arrays (name -> function of the saved array)."""
    arrays = load_archive(path).arrays
    members = {f"arrays/{name}.npy": _npy(change(arrays[name].copy())) for name, change in changes.items()}
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, members.get(info.filename, source.read(info.filename)))
    return out


def _set(index, value):
    def change(array):
        array = array.astype(np.result_type(array.dtype, np.asarray(value).dtype))
        array.reshape(-1)[index] = value
        return array
    return change


@pytest.fixture(scope="module")
def ppo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppo") / "ppo.zip"
    agent = agents_zoo.make("ppo", "CartPole-v1", seed=0, n_envs=2, n_steps=16, batch_size=32, n_epochs=1,
                            normalize_observation=True, policy_hidden_sizes=[8])
    agent.learn(32).save(path)
    return path


@pytest.fixture(scope="module")
def dqn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dqn") / "dqn.zip"
    agent = agents_zoo.make("dqn", "CartPole-v1", seed=0, learning_starts=30, buffer_size=100, train_freq=4,
                            batch_size=8, policy_hidden_sizes=[8], n_steps=3, prioritized_replay=True)
    agent.learn(60).save(path, include_replay_buffer=True)
    return path


# ----------------------------------------------------------------------------- non-finite arrays
@pytest.mark.parametrize("array", ["policy/params", "optimizer/iterations", "observation_rms/var", "observation_rms/mean"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_arrays_are_refused_by_name(ppo_file, tmp_path, array, value):
    bad = _replace_arrays(ppo_file, tmp_path / "bad.zip", **{array: _set(0, value)})
    with pytest.raises(ArchiveError, match=rf"'{bad}': array '{array}' holds a non-finite value \({value}\)"):
        agents_zoo.load(bad)


def test_evaluate_refuses_nan_weights_in_one_line(ppo_file, tmp_path, capsys):
    bad = _replace_arrays(ppo_file, tmp_path / "nan.zip", **{"policy/params": _set(3, np.nan)})
    assert main(["evaluate", str(bad), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("agents-zoo evaluate: error:")
    assert str(bad) in err[0] and "'policy/params' holds a non-finite value (nan)" in err[0]


def test_weights_beyond_float32_range_are_refused(ppo_file, tmp_path):
    """Finite in the file (float64), but inf once assigned to a float32 variable."""
    bad = _replace_arrays(ppo_file, tmp_path / "huge.zip", **{"policy/params": lambda a: a.astype(np.float64) * 1e300})
    with pytest.raises(ArchiveError, match=r"policy/params holds values beyond the range of float32"):
        agents_zoo.load(bad)


def test_negative_variance_is_refused(ppo_file, tmp_path):
    bad = _replace_arrays(ppo_file, tmp_path / "var.zip", **{"observation_rms/var": _set(1, -2.0)})
    with pytest.raises(ArchiveError, match="observation_rms/var holds a negative variance"):
        agents_zoo.load(bad)


def test_non_finite_episode_state_costs_the_episodes_not_the_checkpoint(ppo_file, tmp_path):
    bad = _replace_arrays(ppo_file, tmp_path / "episode.zip", **{"episode_state/last_obs": _set(0, np.nan)})
    assert agents_zoo.load(bad) is not None  # without an env the episode state is not used
    with pytest.warns(UserWarning, match="could not restore the envs' episodes.*episode_state/last_obs"):
        agent = agents_zoo.load(bad, env="CartPole-v1")
    assert agent._last_obs is None  # fresh episodes at the next learn()


# ----------------------------------------------------------------------------- replay buffers
def test_real_replay_buffer_loads(dqn_file):
    agent = agents_zoo.load(dqn_file, env="CartPole-v1")
    assert len(agent.replay) == 60 and agent.replay.priorities is not None


@pytest.mark.parametrize("array, change, message", [
    ("replay/rewards", _set(5, np.nan), r"'replay/rewards' holds a non-finite value \(nan\)"),
    ("replay/rewards", lambda a: a.astype(np.float64) * 1e300, r"expected finite rewards within float32 range"),
    ("replay/actions", _set(2, 2), r"'replay/actions' holds 2 at flat index 2; expected whole numbers in \[0, 1\]"),
    ("replay/actions", _set(0, -1), r"holds -1 at flat index 0; expected whole numbers in \[0, 1\]"),
    ("replay/actions", lambda a: np.full(a.shape, 0.5), r"holds 0.5 at flat index 0; expected whole numbers"),
    ("replay/actions", lambda a: a.astype("<U1"), r"'replay/actions' has dtype <U1; expected whole numbers"),
    ("replay/observations", lambda a: np.concatenate([a, a[:, :1]], axis=1),
     r"'replay/observations' has shape \(60, 5\); expected \(60, 4\)"),
    ("replay/next_observations", lambda a: a[:-1], r"has shape \(59, 4\); expected \(60, 4\)"),
    ("replay/observations", lambda a: a.astype(np.float64) * 1e300,
     r"expected finite numbers within float32 range"),
    ("replay/observations", lambda a: a.astype(np.complex64), r"has dtype complex64"),
    ("replay/terminations", _set(7, 2.0), r"'replay/terminations' holds 2.0 at flat index 7; expected 0 or 1"),
    ("replay/terminations", _set(7, 0.5), r"holds 0.5 at flat index 7; expected 0 or 1"),
    ("replay/ends", lambda a: a.astype(np.int8) * 3, r"'replay/ends' holds 3"),
    ("replay/position", lambda a: a[:1], r"'replay/position' has shape \(1,\); expected \(2,\)"),
    ("replay/position", lambda a: np.array([70, 60]), r"next position 70 beyond the 60 transitions"),
    ("replay/priorities", _set(3, -1.0), r"'replay/priorities' holds -1.0 at flat index 3"),
    ("replay/max_priority", lambda a: np.array([0.0]), r"expected one finite priority > 0"),
])
def test_replay_buffer_restored_like_user_input(dqn_file, tmp_path, array, change, message):
    bad = _replace_arrays(dqn_file, tmp_path / "bad.zip", **{array: change})
    with pytest.raises(RestoredArrayError, match=message) as caught:
        agents_zoo.load(bad, env="CartPole-v1")
    assert str(bad) in str(caught.value)
    with pytest.raises(RestoredArrayError):  # refused without an env too: the file is invalid
        agents_zoo.load(bad)


def test_dqn_counters_are_checked(dqn_file, tmp_path):
    bad = _replace_arrays(dqn_file, tmp_path / "rate.zip", **{"dqn/exploration_rate": lambda a: a * 0 + 6})
    with pytest.raises(RestoredArrayError, match="'dqn/exploration_rate' holds 6.* expected a probability"):
        agents_zoo.load(bad)
    bad = _replace_arrays(dqn_file, tmp_path / "counters.zip", **{"dqn/counters": lambda a: a[:2]})
    with pytest.raises(RestoredArrayError, match=r"'dqn/counters' has shape \(2,\); expected \(3,\)"):
        agents_zoo.load(bad)


def test_missing_replay_array_is_named(dqn_file, tmp_path):
    arrays = load_archive(dqn_file).arrays
    with pytest.raises(RestoredArrayError, match="'replay/rewards' is missing"):
        check_replay_arrays({k: v for k, v in arrays.items() if k != "replay/rewards"}, spaces.Box(-1, 1, (4,)),
                            spaces.Discrete(2), dqn_file)


def _frame_buffer_arrays():
    from agents_zoo.agents.replay import FrameReplayBuffer

    rng = np.random.default_rng(0)
    buffer = FrameReplayBuffer(12, 2, (4, 8, 8), 1)
    frames = rng.integers(0, 255, (2, 1, 8, 8), dtype=np.uint8)
    obs = np.repeat(frames, 4, axis=1)
    for step in range(9):
        new = rng.integers(0, 255, (2, 1, 8, 8), dtype=np.uint8)
        next_obs = np.concatenate([obs[:, 1:], new], axis=1)
        done = np.array([step == 4, False])
        buffer.add(obs, rng.integers(0, 3, 2), rng.random(2), next_obs, done, done)
        obs = np.where(done[:, None, None, None], np.repeat(new, 4, axis=1), next_obs)
    return {f"replay/{name}": value for name, value in buffer.state_arrays().items()}


FRAMES = spaces.Box(0, 255, (4, 8, 8), np.uint8)


@pytest.mark.parametrize("array, change, message", [
    ("replay/frames", lambda a: a.astype(np.float32), "expected uint8 frames"),
    ("replay/frames", lambda a: a[:, :, :, :4], r"expected \(envs, \d+, C, 8, 8\)"),
    ("replay/actions", _set(1, 3), r"holds 3 at flat index 1; expected whole numbers in \[0, 2\]"),
    ("replay/rewards", _set(0, np.inf), "non-finite"),
    ("replay/terminations", _set(2, 4.0), "expected 0 or 1"),
    ("replay/ages", _set(0, 9), "expected ages below the stack of 4 frames"),
    ("replay/write_slot", lambda a: a + 1000, "expected slots below"),
    ("replay/meta", lambda a: np.array([a[0], a[0] + 1, 0]), "expected 0 <= used <= slots"),
    ("replay/valid", lambda a: a[:1], r"has shape \(1, \d+\); expected \(2, \d+\)"),
])
def test_frame_replay_buffer_checks(array, change, message):
    arrays = _frame_buffer_arrays()
    check_replay_arrays(arrays, FRAMES, spaces.Discrete(3), "frames.zip")  # the real state passes
    arrays[array] = change(arrays[array].copy())
    with pytest.raises(RestoredArrayError, match=message):
        check_replay_arrays(arrays, FRAMES, spaces.Discrete(3), "frames.zip")


def test_box_actions_must_lie_in_the_space():
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    arrays = {"replay/observations": np.zeros((3, 4), np.float32), "replay/next_observations": np.zeros((3, 4), np.float32),
              "replay/actions": np.array([[0.0, 1.0], [-1.0, 0.5], [0.2, 1.5]], np.float32),
              "replay/rewards": np.zeros(3, np.float32), "replay/terminations": np.zeros(3, np.float32),
              "replay/position": np.array([3, 3])}
    with pytest.raises(RestoredArrayError, match=r"holds action \[0.2.*, 1.5\] \(transition 2\) outside"):
        check_replay_arrays(arrays, spaces.Box(-5, 5, (4,)), box, "box.zip")
    arrays["replay/actions"][2, 1] = 1.0
    check_replay_arrays(arrays, spaces.Box(-5, 5, (4,)), box, "box.zip")


# ----------------------------------------------------------------------------- saved state fields
@pytest.mark.parametrize("field, value, message", [
    ("num_timesteps", float("nan"), "saved 'num_timesteps' must be a non-negative int, got nan"),
    ("num_timesteps", 2**70, "saved 'num_timesteps' must be a non-negative int"),
    ("episode_lengths", [1, None], "saved 'episode_lengths' must be a list of non-negative ints"),
    ("episode_returns", [float("inf")], "saved 'episode_returns' must be a list of finite numbers"),
    ("agent", "dqn", "holds 'agent/ppo' but its config names agent 'dqn'"),
])
def test_saved_fields_are_checked(ppo_file, tmp_path, field, value, message):
    with zipfile.ZipFile(ppo_file) as source:
        manifest = json.loads(source.read("manifest.json"))
        members = {info.filename: source.read(info.filename) for info in source.infolist()}
    manifest["config"][field] = value
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "fields.zip"
    with zipfile.ZipFile(bad, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ArchiveError, match=message):
            agents_zoo.load(bad)
