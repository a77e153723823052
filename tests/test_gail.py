"""GAIL: discriminator loss and rewards by hand, the horizon check, smoke training, save/load."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from agents_zoo.agents.gail import (GAIL, GAILConfig, VariableHorizonError, bernoulli_entropy,
                                    discriminator_objective, gail_reward)
from agents_zoo.demonstrations import Demonstrations, rollout, save_demonstrations

LOGITS = np.array([-2.0, 0.0, 1.5], np.float32)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("form, expected", [
    ("gail", [-math.log(1 - sigmoid(x)) for x in LOGITS]),
    ("log_d", [math.log(sigmoid(x)) for x in LOGITS]),
    ("logit", [math.log(sigmoid(x)) - math.log(1 - sigmoid(x)) for x in LOGITS]),
    ("mirror", [-math.log(sigmoid(x)) for x in LOGITS]),
])
def test_reward_forms_by_hand(form, expected):
    np.testing.assert_allclose(gail_reward(LOGITS, form).numpy(), expected, rtol=1e-5)


def test_reward_is_finite_at_extreme_logits():
    for form in ("gail", "log_d", "logit", "mirror"):
        assert np.all(np.isfinite(gail_reward(np.array([-200.0, 200.0]), form).numpy()))
    with pytest.raises(ValueError, match="reward_form must be one of gail, log_d, logit, mirror, got 'wgan'"):
        gail_reward(LOGITS, "wgan")


def test_discriminator_loss_and_accuracy_by_hand():
    expert, policy = np.array([2.0, -1.0]), np.array([-3.0, 0.5])
    # Binary cross-entropy: expert labelled 1, policy 0, halves averaged.
    expert_loss = -(math.log(sigmoid(2.0)) + math.log(sigmoid(-1.0))) / 2
    policy_loss = -(math.log(1 - sigmoid(-3.0)) + math.log(1 - sigmoid(0.5))) / 2
    loss, expert_acc, policy_acc = discriminator_objective(expert, policy, "gail")
    assert float(loss) == pytest.approx(0.5 * (expert_loss + policy_loss), rel=1e-5)
    assert float(expert_acc) == 0.5 and float(policy_acc) == 0.5
    # Mirror convention: expert labelled 0, policy 1.
    mirror_expert = -(math.log(1 - sigmoid(2.0)) + math.log(1 - sigmoid(-1.0))) / 2
    mirror_policy = -(math.log(sigmoid(-3.0)) + math.log(sigmoid(0.5))) / 2
    loss, expert_acc, policy_acc = discriminator_objective(expert, policy, "mirror")
    assert float(loss) == pytest.approx(0.5 * (mirror_expert + mirror_policy), rel=1e-5)
    assert float(expert_acc) == 0.5 and float(policy_acc) == 0.5
    # Entropy bonus: the loss drops by coef * mean Bernoulli entropy of all four outputs.
    entropies = [-(sigmoid(x) * math.log(sigmoid(x)) + (1 - sigmoid(x)) * math.log(1 - sigmoid(x)))
                 for x in (2.0, -1.0, -3.0, 0.5)]
    np.testing.assert_allclose(bernoulli_entropy(np.array([2.0, -1.0, -3.0, 0.5], np.float32)).numpy(), entropies, rtol=1e-5)
    with_bonus, _, _ = discriminator_objective(expert, policy, "gail", entropy_coef=0.1)
    assert float(with_bonus) == pytest.approx(0.5 * (expert_loss + policy_loss) - 0.1 * np.mean(entropies), rel=1e-5)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="reward_form must be one of"):
        GAILConfig(reward_form="airl")
    with pytest.raises(ValueError, match="n_disc_updates_per_round must be >= 1, got 0"):
        GAILConfig(n_disc_updates_per_round=0)
    with pytest.raises(ValueError, match="grad_penalty_coef"):
        GAILConfig(grad_penalty_coef=-1.0)


class ThresholdPolicy:
    def predict(self, observation, deterministic=True):
        observation = np.asarray(observation)
        return (observation[:, 2] + 0.5 * observation[:, 3] > 0).astype(np.int64), None


@pytest.fixture(scope="module")
def cartpole_demos() -> Demonstrations:
    pytest.importorskip("seals")
    return rollout(ThresholdPolicy(), "seals/CartPole-v0", 2, seed=0)


TINY = dict(n_envs=2, n_steps=32, batch_size=32, n_epochs=2, demo_batch_size=32, n_disc_updates_per_round=2)


def test_features_one_hot_discrete_actions(cartpole_demos):
    agent = GAIL("seals/CartPole-v0", demonstrations=cartpole_demos, seed=0, **TINY)
    assert agent.disc_input_dim == 4 + 2
    features = agent._features(np.ones((3, 4), np.float32), np.array([0, 1, 1]))
    np.testing.assert_array_equal(features[:, 4:], [[1, 0], [0, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"Discrete actions must be in \[0, 2\)"):
        agent._features(np.ones((1, 4), np.float32), np.array([2]))


@pytest.mark.parametrize("options", [  # the defaults are trained in test_save_load_round_trip
    {"reward_form": "mirror", "grad_penalty_coef": 10.0, "disc_entropy_coef": 1e-3},
    {"reward_form": "logit", "normalize_disc_input": False, "gen_replay_buffer_capacity": 16},
])
def test_few_steps_of_training_log_disc_stats(cartpole_demos, options):
    agent = GAIL("seals/CartPole-v0", demonstrations=cartpole_demos, seed=0, **TINY, **options)
    agent.learn(128)
    logged = agent.logger.history[-1]
    for key in ("disc/expert_acc", "disc/gen_acc", "disc/loss", "disc/reward_mean", "train/policy_gradient_loss"):
        assert np.isfinite(logged[key]), key
    assert 0.0 <= logged["disc/expert_acc"] <= 1.0 and 0.0 <= logged["disc/gen_acc"] <= 1.0
    if options.get("grad_penalty_coef"):
        assert logged["disc/grad_penalty"] > 0.0
    # The PPO buffer holds the discriminator's rewards, not the env's (which are 0 or 1 here).
    np.testing.assert_allclose(
        agent.buffer.rewards.reshape(-1),
        agent.predict_reward(agent._transitions["observations"].reshape(-1, 4),
                             agent._transitions["actions"].reshape(-1)), rtol=1e-4, atol=1e-5)


def test_box_actions_on_pendulum():
    demos = rollout(_ZeroTorque(), "Pendulum-v1", 2, seed=0)
    agent = GAIL("Pendulum-v1", demonstrations=demos, seed=0, **TINY)
    assert agent.disc_input_dim == 3 + 1
    agent.learn(64)
    assert np.isfinite(agent.logger.history[-1]["disc/loss"])


class _ZeroTorque:
    def predict(self, observation, deterministic=True):
        return np.zeros((len(observation), 1), np.float32), None


class _RandomPolicy:
    def __init__(self):
        self.rng = np.random.default_rng(0)

    def predict(self, observation, deterministic=True):
        return self.rng.integers(0, 2, len(observation)), None


def test_variable_horizon_is_refused(tmp_path):
    variable = rollout(_RandomPolicy(), "CartPole-v1", 3, seed=0)
    assert not variable.fixed_horizon
    with pytest.raises(VariableHorizonError, match="episode lengths from .* allow_variable_horizon=True"):
        GAIL("CartPole-v1", demonstrations=variable, seed=0, **TINY)
    # Fixed-length demonstrations, but the policy's CartPole-v1 episodes end early.
    fixed = Demonstrations(observations=np.zeros((2, 500, 4), np.float32), actions=np.zeros((2, 500), np.int64),
                           rewards=np.ones((2, 500), np.float32))
    agent = GAIL("CartPole-v1", demonstrations=fixed, seed=0, **TINY)
    with pytest.raises(VariableHorizonError, match="a policy episode ended after .* all have 500"):
        agent.learn(2_000)
    GAIL("CartPole-v1", demonstrations=variable, seed=0, allow_variable_horizon=True, **TINY).learn(64)


def test_demonstrations_must_fit_the_env(cartpole_demos, tmp_path):
    with pytest.raises(ValueError, match=r"shape \(4,\) per step, but the env's observation space"):
        GAIL("Pendulum-v1", demonstrations=cartpole_demos, seed=0, **TINY)
    with pytest.raises(TypeError, match="demonstrations must be"):
        GAIL("seals/CartPole-v0", demonstrations=42, seed=0, **TINY)
    missing = GAIL("seals/CartPole-v0", seed=0, demonstrations_path=str(tmp_path / "none.npz"), **TINY)
    with pytest.raises(RuntimeError, match="no file at demonstrations_path"):
        missing.learn(64)


def test_save_load_round_trip(cartpole_demos, tmp_path):
    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    agent = GAIL("seals/CartPole-v0", seed=0, demonstrations_path=str(path), **TINY)
    agent.learn(128)
    agent.save(tmp_path / "gail.zip")
    path.unlink()  # the expert pairs travel inside the model file
    loaded = GAIL.load(tmp_path / "gail.zip", env="seals/CartPole-v0")
    observations = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    actions = np.arange(16) % 2
    np.testing.assert_array_equal(agent.predict(observations, deterministic=True)[0],
                                  loaded.predict(observations, deterministic=True)[0])
    np.testing.assert_allclose(agent.predict_reward(observations, actions), loaded.predict_reward(observations, actions))
    for original, restored in zip(agent.disc_optimizer.variables, loaded.disc_optimizer.variables):
        np.testing.assert_array_equal(original.numpy(), restored.numpy())
    np.testing.assert_array_equal(agent.disc_input_rms.mean, loaded.disc_input_rms.mean)
    np.testing.assert_array_equal(agent.expert_features, loaded.expert_features)
    loaded.learn(64, reset_num_timesteps=False)  # resumes without the demonstration file
    assert loaded.num_timesteps == 128 + 64


def test_train_cli_runs_gail(cartpole_demos, tmp_path):
    from agents_zoo.cli import main

    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    status = main(["train", "gail", "seals/CartPole-v0", "--steps", "64", "--seed", "0", "--no-progress",
                   "--eval-episodes", "0", "--save", str(tmp_path / "gail.zip"), "--config",
                   f"demonstrations_path={path}", "n_envs=2", "n_steps=32", "batch_size=32", "demo_batch_size=32"])
    assert status == 0 and (tmp_path / "gail.zip").is_file()


def test_same_seed_gives_identical_weights_and_returns(cartpole_demos, tmp_path):
    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)

    def run():
        agent = GAIL("seals/CartPole-v0", seed=3, demonstrations_path=str(path), deterministic_ops=True, **TINY)
        agent.learn(256)
        weights = {name: [v.numpy() for v in obj.variables] for name, obj in agent._trainables().items()}
        return weights, list(agent._episode_returns), agent.predict_reward(cartpole_demos.observations[0][:8], cartpole_demos.actions[0][:8])

    weights_a, returns_a, rewards_a = run()
    weights_b, returns_b, rewards_b = run()
    assert returns_a == returns_b
    np.testing.assert_array_equal(rewards_a, rewards_b)
    for name in weights_a:
        for a, b in zip(weights_a[name], weights_b[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def _other_demos(n_obs: int = 3) -> Demonstrations:
    """Demonstrations of another env (3-dim observations): loading them into a CartPole GAIL fails."""
    return Demonstrations(observations=np.ones((2, 4, n_obs), np.float32), actions=np.zeros((2, 4), np.int64),
                          rewards=np.ones((2, 4), np.float32))


def test_what_was_saved_wins_over_files_in_the_current_directory(cartpole_demos, tmp_path, monkeypatch):
    """The saved expert pairs are used on load: neither an unrelated ``demos.npz`` in the current
    directory nor a changed file at the saved path replaces them; the path is saved absolute."""
    from agents_zoo.core.serialization import load_archive

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    save_demonstrations(work / "demos.npz", cartpole_demos)
    agent = GAIL("seals/CartPole-v0", seed=0, demonstrations_path="demos.npz", **TINY)
    assert agent.config.demonstrations_path == str(work / "demos.npz")
    agent.save(tmp_path / "gail.zip")
    assert load_archive(tmp_path / "gail.zip").config["config"]["demonstrations_path"] == str(work / "demos.npz")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    save_demonstrations(elsewhere / "demos.npz", _other_demos())  # would fail: 3-dim observations
    save_demonstrations(work / "demos.npz", _other_demos())  # the saved path now holds another file too
    loaded = GAIL.load(tmp_path / "gail.zip", env="seals/CartPole-v0")
    np.testing.assert_array_equal(loaded.expert_features, agent.expert_features)
    loaded.learn(64, reset_num_timesteps=False)
    # An explicit argument replaces the saved pairs.
    explicit = GAIL.load(tmp_path / "gail.zip", demonstrations=_other_demos(4))
    assert explicit.expert_features.shape == (8, 6) and not np.array_equal(explicit.expert_features[:1],
                                                                            agent.expert_features[:1])


def test_a_saved_path_alone_is_read_only_when_absolute(cartpole_demos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    later = tmp_path / "later.npz"
    untrained = GAIL("seals/CartPole-v0", seed=0, demonstrations_path=str(later), **TINY)  # no file yet
    untrained.save(tmp_path / "path_only.zip")
    save_demonstrations(later, cartpole_demos)
    assert GAIL.load(tmp_path / "path_only.zip").expert_features is not None  # the absolute path is read

    # A file of an earlier version: only a relative path. A demos.npz in the current directory
    # is not taken for it.
    with zipfile.ZipFile(tmp_path / "path_only.zip") as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    manifest = json.loads(members["manifest.json"])
    manifest["config"]["config"]["demonstrations_path"] = "demos.npz"
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "relative.zip", "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    relative = GAIL.load(tmp_path / "relative.zip", env="seals/CartPole-v0")
    assert relative.expert_features is None
    with pytest.raises(RuntimeError, match="only the relative demonstrations_path='demos.npz', which is not "
                                           "resolved against the current directory"):
        relative.learn(64)
    relative.set_demonstrations(tmp_path / "demos.npz")  # the user decides
    relative.learn(64)


def test_resume_with_the_same_relative_path_is_not_a_changed_setting(cartpole_demos, tmp_path, monkeypatch):
    from agents_zoo.cli import main

    monkeypatch.chdir(tmp_path)
    save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    argv = ["train", "gail", "seals/CartPole-v0", "--seed", "0", "--no-progress", "--eval-episodes", "0",
            "--save", "gail.zip", "--config", "demonstrations_path=demos.npz", "n_envs=2", "n_steps=32",
            "batch_size=32", "demo_batch_size=32"]
    assert main([*argv, "--steps", "64"]) == 0
    assert main([*argv, "--steps", "128", "--resume"]) == 0
