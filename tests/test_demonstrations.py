"""Expert demonstrations: the classic GAIL .npz layout, validation, imitation conversion, the CLI."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest

from agents_zoo import demonstrations as demos_module
from agents_zoo.demonstrations import (DemonstrationError, Demonstrations, from_trajectories, load_demonstrations,
                                       rollout, save_demonstrations, to_trajectories)


def ragged_demonstrations() -> Demonstrations:
    rng = np.random.default_rng(0)
    episodes = []
    for length, terminal in ((5, True), (3, True), (4, False)):
        episodes.append({"obs": rng.standard_normal((length + 1, 4)).astype(np.float32),
                         "acts": rng.integers(0, 2, length), "rews": np.ones(length, np.float32),
                         "terminal": terminal})
    return Demonstrations.from_episodes(episodes)


def classic_arrays(n_episodes: int = 2, steps: int = 3) -> dict[str, np.ndarray]:
    """A file as the original GAIL code wrote it: four keys, Box actions."""
    rews = np.ones((n_episodes, steps), np.float32)
    return {"obs": np.zeros((n_episodes, steps, 11), np.float32), "acs": np.zeros((n_episodes, steps, 3), np.float32),
            "rews": rews, "ep_rets": rews.sum(axis=1)}


def write_npz(path, **arrays) -> None:
    np.savez(path, **arrays)


def test_layout_and_padding():
    demos = ragged_demonstrations()
    assert demos.observations.shape == (3, 5, 4)
    assert demos.actions.shape == (3, 5)
    assert demos.lengths.tolist() == [5, 3, 4]
    assert demos.episode_returns.tolist() == [5.0, 3.0, 4.0]
    assert not demos.fixed_horizon
    assert np.all(demos.observations[1, 3:] == 0)  # padding after the end
    assert repr(demos) == "Demonstrations(3 episodes, 12 transitions, observations (4,) float32, mean return 4.00)"
    observations, actions = demos.transitions()
    assert observations.shape == (12, 4) and actions.shape == (12,)


def test_save_load_round_trip(tmp_path):
    demos = ragged_demonstrations()
    path = save_demonstrations(tmp_path / "demos.npz", demos)
    loaded = load_demonstrations(path)
    for key, value in demos.to_arrays().items():
        np.testing.assert_array_equal(loaded.to_arrays()[key], value, err_msg=key)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_classic_file_without_extra_keys_loads(tmp_path):
    write_npz(tmp_path / "classic.npz", **classic_arrays())
    demos = load_demonstrations(tmp_path / "classic.npz")
    assert demos.lengths.tolist() == [3, 3] and demos.final_observations is None and demos.fixed_horizon


def test_imitation_round_trip():
    pytest.importorskip("imitation")
    from imitation.data import types

    demos = ragged_demonstrations()
    trajectories = to_trajectories(demos)
    assert all(isinstance(t, types.TrajectoryWithRew) for t in trajectories)
    assert [len(t) for t in trajectories] == [5, 3, 4]
    assert [t.terminal for t in trajectories] == [True, True, False]
    np.testing.assert_array_equal(trajectories[1].obs[-1], demos.final_observations[1])
    back = from_trajectories(trajectories)
    for key, value in demos.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], value, err_msg=key)
    # Plain Trajectory (no rewards) converts with zero rewards.
    plain = types.Trajectory(obs=np.zeros((3, 2)), acts=np.zeros(2, np.int64), infos=None, terminal=True)
    assert from_trajectories([plain]).episode_returns.tolist() == [0.0]


@pytest.mark.parametrize("mutate, key, fragment", [
    (lambda a: a.pop("acs"), "acs", "is missing"),
    (lambda a: a.__setitem__("obs", a["obs"][:, :2]), "obs", "expected (2, 3, ...)"),
    (lambda a: a.__setitem__("rews", np.where(np.eye(2, 3) > 0, np.nan, a["rews"])), "rews", "non-finite"),
    (lambda a: a.__setitem__("obs", np.full_like(a["obs"], np.inf)), "obs", "non-finite"),
    (lambda a: a.__setitem__("rews", a["rews"].astype(np.int64)), "rews", "dtype int64"),
    (lambda a: a.__setitem__("obs", a["obs"].astype(np.str_)), "obs", "dtype <U"),
    (lambda a: a.__setitem__("ep_rets", a["ep_rets"] + 5), "ep_rets", "disagrees with the sum"),
    (lambda a: a.__setitem__("lens", np.array([3, 9])), "lens", "expected lengths in [1, 3]"),
    (lambda a: a.__setitem__("lens", np.array([3.0, 2.0])), "lens", "expected ints"),
])
def test_malformed_files_are_rejected_by_key(tmp_path, mutate, key, fragment):
    arrays = classic_arrays()
    mutate(arrays)
    write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DemonstrationError) as info:
        load_demonstrations(tmp_path / "bad.npz")
    assert f"key {key!r}" in str(info.value) and fragment in str(info.value)


def test_ragged_object_array_is_refused_without_unpickling(tmp_path):
    arrays = classic_arrays()
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 11)), np.zeros((2, 11))
    np.savez(tmp_path / "ragged.npz", **{**arrays, "obs": ragged})  # needs pickle to read back
    with pytest.raises(DemonstrationError, match="'obs' holds pickled Python objects"):
        load_demonstrations(tmp_path / "ragged.npz")


class _Boom:
    def __reduce__(self):
        return (pytest.fail, ("unpickled a demonstration file",))


def test_pickle_inside_is_never_unpickled(tmp_path):
    # A crafted member: a .npy header declaring an object array followed by a pickle payload.
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([_Boom()], dtype=object), allow_pickle=True)
    arrays = classic_arrays()
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, value)
            archive.writestr(f"{key}.npy", member.getvalue())
        archive.writestr("lens.npy", buffer.getvalue())
    with pytest.raises(DemonstrationError, match="'lens' holds pickled"):
        load_demonstrations(tmp_path / "evil.npz")
    # And a bare pickle file instead of an .npz.
    (tmp_path / "evil.pkl.npz").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(DemonstrationError, match="pickle"):
        load_demonstrations(tmp_path / "evil.pkl.npz")


def test_other_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_demonstrations(tmp_path / "missing.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DemonstrationError, match="single .npy array"):
        load_demonstrations(tmp_path / "single.npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DemonstrationError, match="not a readable .npz"):
        load_demonstrations(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="end in .npz"):
        save_demonstrations(tmp_path / "demos.txt", ragged_demonstrations())


class ThresholdPolicy:
    """Pushes the cart toward the pole's lean: a decent CartPole expert without training."""

    def predict(self, observation, deterministic=True):
        observation = np.asarray(observation)
        return (observation[:, 2] + 0.5 * observation[:, 3] > 0).astype(np.int64), None


def test_rollout_records_full_episodes():
    demos = rollout(ThresholdPolicy(), "CartPole-v1", 5, seed=0, n_envs=2)
    assert demos.n_episodes == 5
    assert np.all(demos.terminal | (demos.lengths == 500))
    np.testing.assert_allclose(demos.episode_returns, demos.lengths)  # CartPole pays 1 per step
    again = rollout(ThresholdPolicy(), "CartPole-v1", 5, seed=0, n_envs=2)
    np.testing.assert_array_equal(again.observations, demos.observations)  # seeded
    with pytest.raises(ValueError, match="n_episodes must be a positive int"):
        rollout(ThresholdPolicy(), "CartPole-v1", 0)


def test_unknown_trainer_is_refused():
    with pytest.raises(ValueError, match="trainer must be one of ppo, trpo, sb3-ppo, got 'ddpg'"):
        demos_module.train_expert("CartPole-v1", "ddpg", 10)


def test_a_cut_expert_run_continues_from_its_checkpoint_as_if_never_cut(tmp_path, monkeypatch):
    from agents_zoo.agents.ppo import PPO

    settings = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2, "learning_rate_schedule": "linear"}
    whole = demos_module.train_expert("CartPole-v1", "ppo", 1024, seed=3, config=settings)
    checkpoint = tmp_path / "expert.zip"
    train = PPO._train
    updates = iter(range(100))

    def dies_at_the_sixth_update(self):
        if next(updates) == 5:
            raise KeyboardInterrupt("cut")  # the process dies between two updates
        return train(self)

    monkeypatch.setattr(PPO, "_train", dies_at_the_sixth_update)
    with pytest.raises(KeyboardInterrupt):
        demos_module.train_expert("CartPole-v1", "ppo", 1024, seed=3, config=settings, checkpoint_path=checkpoint,
                                  checkpoint_every=256)
    assert PPO.load(checkpoint).num_timesteps == 512  # the last checkpoint before the cut
    monkeypatch.setattr(PPO, "_train", train)
    resumed = demos_module.train_expert("CartPole-v1", "ppo", 1024, seed=3, config=settings,
                                        checkpoint_path=checkpoint, checkpoint_every=256)
    assert resumed.num_timesteps == 1024
    for ours, theirs in zip(resumed.policy.trainable_variables, whole.policy.trainable_variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="checkpoint_path resumes our PPO .* trainer 'trpo' has no such save"):
        demos_module.train_expert("CartPole-v1", "trpo", 10, checkpoint_path=checkpoint)


def _run_cli(argv: list[str]) -> int:
    """``agents-zoo expert ...`` through the CLI's one error boundary."""
    from agents_zoo.cli import main

    return main(["expert", *argv])


@pytest.mark.parametrize("trainer", ["ppo", pytest.param("sb3-ppo", marks=pytest.mark.bench),
                                     pytest.param("trpo", marks=pytest.mark.bench)])
def test_expert_cli_train_rollout_inspect(tmp_path, capsys, trainer):
    if trainer != "ppo":
        pytest.importorskip("sb3_contrib")  # the [bench] extra
    config = ["n_steps=16", "n_envs=2", "batch_size=32"]
    expert, demos = tmp_path / "expert.zip", tmp_path / "demos.npz"
    status = _run_cli(["train", "CartPole-v1", "--trainer", trainer, "--steps", "64", "--save", str(expert),
                       "--demos", str(demos), "--episodes", "2", "--config", *config])
    assert status == 0 and expert.is_file() and load_demonstrations(demos).n_episodes == 2
    again = tmp_path / "again.npz"
    assert _run_cli(["rollout", str(expert), "CartPole-v1", "--trainer", trainer, "--episodes", "3",
                     "--out", str(again)]) == 0
    assert load_demonstrations(again).n_episodes == 3
    assert _run_cli(["inspect", str(again)]) == 0
    assert '"episodes": 3' in capsys.readouterr().out


def test_expert_cli_reports_bad_input(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", obs=np.zeros((1, 2, 3)))
    assert _run_cli(["inspect", str(tmp_path / "bad.npz")]) == 2
    assert "'acs' is missing" in capsys.readouterr().err


@pytest.mark.bench
def test_sb3_expert_round_trips_without_pickle_and_sb3_zips_are_refused(tmp_path):
    pytest.importorskip("stable_baselines3")
    from agents_zoo.core.serialization import ArchiveError, load_archive
    from agents_zoo.demonstrations import load_expert, save_expert, train_expert

    expert = train_expert("CartPole-v1", trainer="sb3-ppo", total_timesteps=256, seed=0,
                          config={"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1})
    path = save_expert(expert, tmp_path / "expert.zip")
    assert load_archive(path).kind == "expert/sb3-ppo"  # our archive, not SB3's cloudpickle zip
    loaded = load_expert(path, "sb3-ppo")
    observations = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    np.testing.assert_array_equal(expert.predict(observations, deterministic=True)[0],
                                  loaded.predict(observations, deterministic=True)[0])
    expert.save(tmp_path / "sb3_native.zip")
    with pytest.raises(ArchiveError, match="SB3's own zip files are unpickled by SB3 and are not read"):
        load_expert(tmp_path / "sb3_native.zip", "sb3-ppo")
