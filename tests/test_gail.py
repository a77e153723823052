"""GAIL: discriminator loss and rewards by hand, the horizon check, smoke training, save/load."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest

from agents_zoo.agents.gail import (GAIL, GAILConfig, VariableHorizonError, bernoulli_entropy,
                                    discriminator_objective, gail_reward)
from agents_zoo.core.envs import make_vec_env
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
    # The learner learns from what its reward hook returns: record it.
    returned, hook = [], agent.learner.reward_fn
    agent.learner.reward_fn = lambda *transitions: returned.append(hook(*transitions)) or returned[-1]
    agent.learn(128)
    logged = agent.logger.history[-1]
    for key in ("disc/expert_acc", "disc/gen_acc", "disc/loss", "disc/reward_mean", "disc/reward_expert",
                "train/policy_gradient_loss"):
        assert np.isfinite(logged[key]), key
    assert 0.0 <= logged["disc/expert_acc"] <= 1.0 and 0.0 <= logged["disc/gen_acc"] <= 1.0
    if options.get("grad_penalty_coef"):
        assert logged["disc/grad_penalty"] > 0.0
    # The learner's rewards are the discriminator's (the env's are 0 or 1 here), one per transition.
    assert len(returned) == 2 and returned[-1].shape == (64,)
    np.testing.assert_allclose(returned[-1], agent.predict_reward(agent.last_rollout["observations"],
                                                                  agent.last_rollout["actions"]), rtol=1e-4, atol=1e-5)
    assert logged["disc/reward_mean"] == pytest.approx(float(returned[-1].mean()), rel=1e-5)


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


def test_set_env_moves_the_learner_too(cartpole_demos, tmp_path):
    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    agent = GAIL("seals/CartPole-v0", seed=0, demonstrations_path=str(path), **TINY)
    vec = make_vec_env("seals/CartPole-v0", TINY["n_envs"])
    agent.set_env(vec)
    assert agent.get_env() is vec and agent.learner.get_env() is vec
    agent.learn(64)
    assert agent.num_timesteps == agent.learner.num_timesteps == 64


def test_train_cli_runs_gail(cartpole_demos, tmp_path):
    from agents_zoo.cli import main

    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    status = main(["train", "gail", "seals/CartPole-v0", "--steps", "64", "--seed", "0", "--no-progress",
                   "--eval-episodes", "0", "--save", str(tmp_path / "gail.zip"), "--config",
                   f"demonstrations_path={path}", "n_envs=2", "n_steps=32", "batch_size=32", "demo_batch_size=32"])
    assert status == 0 and (tmp_path / "gail.zip").is_file()
    # Its two pictures go next to the model (no --plots, no --log-dir).
    assert (tmp_path / "gail_return.png").is_file() and (tmp_path / "gail_discriminator.png").is_file()


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


# ----------------------------------------------------------------------------- the learner
def test_gail_composes_its_learner_and_shares_its_state(cartpole_demos):
    from agents_zoo.agents.ppo import PPO
    from agents_zoo.core.base import BaseAgent
    from agents_zoo.core.config import AgentConfig

    assert GAIL.__bases__ == (BaseAgent,) and GAILConfig.__bases__ == (AgentConfig,)
    agent = GAIL("seals/CartPole-v0", demonstrations=cartpole_demos, seed=0, **TINY)
    assert type(agent.learner) is PPO and agent.learner.reward_fn == agent._discriminator_reward
    assert agent.learner.env is agent.env and agent.learner.config.n_envs == 2
    agent.learn(128)
    # One step count, one episode record, one random generator, one log: the learner's.
    assert agent.num_timesteps == agent.learner.num_timesteps == 128
    assert agent._episode_returns is agent.learner._episode_returns and agent.rng is agent.learner.rng
    assert agent.learner.logger is agent.logger and "train/policy_gradient_loss" in agent.logger.history[-1]


def test_learner_settings_nested_or_flat():
    nested = GAILConfig(learner_kwargs={"n_steps": 32, "batch_size": 32})
    assert GAILConfig.from_dict({"n_steps": 32, "batch_size": 32}) == nested
    assert nested.learner_kwargs["n_steps"] == 32 and nested.learner_kwargs["use_sde"] is False
    # Unset learner settings: GAIL's defaults for the learner, then the learner's own.
    from agents_zoo.agents.gail import LEARNER_DEFAULTS
    from agents_zoo.agents.ppo import PPOConfig

    for key, value in LEARNER_DEFAULTS["ppo"].items():
        assert nested.learner_kwargs[key] == (32 if key in ("n_steps", "batch_size") else value), key
    assert nested.learner_kwargs["clip_range"] == PPOConfig().clip_range
    # A flat key is applied over learner_kwargs; the learner's config is built with GAIL's shared settings.
    both = GAILConfig.from_dict({"learner_kwargs": {"n_steps": 32, "batch_size": 32}, "n_steps": 64, "n_envs": 3})
    assert both.learner_kwargs["n_steps"] == 64 and both.learner_config().n_envs == 3
    assert GAILConfig.from_dict(both.to_dict()) == both  # what a saved model holds rebuilds it
    assert GAILConfig.build(both, learner="a2c").learner_kwargs["n_steps"] == 5  # A2C's own, not PPO's 64

    with pytest.raises(ValueError, match="unknown setting 'n_stepz' for GAILConfig or its learner 'ppo'; "
                                         "did you mean 'n_steps'"):
        GAILConfig.from_dict({"n_stepz": 32})
    with pytest.raises(ValueError, match="learner_kwargs sets n_envs, which GAIL shares with its learner"):
        GAILConfig(learner_kwargs={"n_envs": 4})
    with pytest.raises(ValueError, match="learner_kwargs of learner 'ppo': batch_size must be <= n_steps"):
        GAILConfig(n_envs=1, learner_kwargs={"n_steps": 8, "batch_size": 64})
    with pytest.raises(ValueError, match=r"learner 'dqn' is not an on-policy agent .* expected one of: a2c, .*ppo"):
        GAILConfig(learner="dqn")
    with pytest.raises(ValueError, match=r"learner must be a registered on-policy agent \(a2c, .*ppo.*\), got 'ppx'; "
                                         r"did you mean 'ppo'\?"):
        GAILConfig(learner="ppx")


def test_a2c_learner_trains_saves_and_loads(cartpole_demos, tmp_path):
    from agents_zoo.agents.a2c import A2C

    agent = GAIL("seals/CartPole-v0", demonstrations=cartpole_demos, seed=0, n_envs=2, learner="a2c",
                 learner_kwargs={"n_steps": 16}, demo_batch_size=16, n_disc_updates_per_round=1)
    assert type(agent.learner) is A2C
    agent.learn(96)
    assert agent.num_timesteps == 96 and np.isfinite(agent.logger.history[-1]["disc/loss"])
    loaded = GAIL.load(agent.save(tmp_path / "gail_a2c.zip"), env="seals/CartPole-v0")
    assert type(loaded.learner) is A2C and loaded.config == agent.config
    observations = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0],
                                  agent.predict(observations, deterministic=True)[0])
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128


def test_a_plugin_on_policy_agent_is_a_learner(cartpole_demos):
    import agents_zoo
    from agents_zoo import registry
    from agents_zoo.agents.ppo import PPO

    class PluginPPO(PPO):
        name = "plugin-ppo"

    agents_zoo.register("plugin-ppo", PluginPPO)
    try:
        agent = GAIL("seals/CartPole-v0", demonstrations=cartpole_demos, seed=0, learner="plugin-ppo", **TINY)
        assert type(agent.learner) is PluginPPO
        agent.learn(64)
        assert agent.num_timesteps == 64
    finally:
        registry.unregister("plugin-ppo")


def test_cli_lists_learner_settings_and_resume_compares_them(cartpole_demos, tmp_path, capsys):
    from agents_zoo.cli import main

    assert main(["train", "gail", "--list-config"]) == 0
    listed = capsys.readouterr().out
    assert "learner_kwargs" in listed and "learner ppo: steps per env in each rollout" in listed
    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    argv = ["train", "gail", "seals/CartPole-v0", "--seed", "0", "--no-progress", "--eval-episodes", "0",
            "--save", str(tmp_path / "gail.zip"), "--config", f"demonstrations_path={path}", "n_envs=2",
            "batch_size=32", "demo_batch_size=32"]
    assert main([*argv, "n_steps=32", "--steps", "64"]) == 0
    capsys.readouterr()
    assert main([*argv, "n_steps=16", "--steps", "128", "--resume"]) == 2
    assert "learner_kwargs.n_steps=16 (checkpoint: 32)" in capsys.readouterr().err


def test_cli_draws_the_return_and_the_discriminator_reward(cartpole_demos, tmp_path, capsys):
    from agents_zoo.cli import main

    path = save_demonstrations(tmp_path / "demos.npz", cartpole_demos)
    status = main(["train", "gail", "seals/CartPole-v0", "--steps", "256", "--seed", "0", "--no-progress",
                   "--eval-episodes", "2", "--eval-every", "64", "--plots", str(tmp_path / "plots"), "--config",
                   f"demonstrations_path={path}", "n_envs=2", "n_steps=32", "batch_size=32", "demo_batch_size=32"])
    assert status == 0
    for name in ("gail_return.png", "gail_discriminator.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, name
    assert "gail_return.png" in capsys.readouterr().out
    assert main(["train", "ppo", "CartPole-v1", "--steps", "64", "--plots", str(tmp_path)]) == 2
    assert "--plots draws GAIL's training; ppo has no training pictures" in capsys.readouterr().err
