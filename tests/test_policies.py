"""core.policies: the flat actor-critic is SB3's two MLPs in one variable, each network's NumPy
forward (the acting path) equals its TF forward, and the saved variable names stay the ones
earlier files hold."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

import agents_zoo

from agents_zoo.agents.a2c import a2c_loss
from agents_zoo.core import distributions, saved_variables
from agents_zoo.core.networks import MLP
from agents_zoo.core.optimizers import TorchStyleOptimizer, clipped_step
from agents_zoo.core.policies import ActorCritic, NumpyActorCritic, NumpyForward, QNetwork
from agents_zoo.core.seeding import derive_seed

BOX_OBSERVATIONS = gym.spaces.Box(-1, 1, (5,), np.float32)
ACTION_SPACES = [gym.spaces.Discrete(3), gym.spaces.Box(-2, 2, (2,), np.float32)]
OBSERVATION_SPACES = [BOX_OBSERVATIONS, gym.spaces.Discrete(4)]


def _observations(space: gym.Space, n: int = 7) -> np.ndarray:
    space.seed(0)
    return np.stack([space.sample() for _ in range(n)])


class TwoMLPs(keras.Model):
    """SB3's actor-critic as separate Keras layers called one by one: what the flat one must equal."""

    def __init__(self, action_space: gym.Space, hidden: tuple[int, ...], seed: int, log_std_init: float):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        action_dim = int(action_space.n) if self.discrete else action_space.shape[0]
        self.policy_net = MLP(hidden, "tanh", action_dim, output_gain=0.01, seed=derive_seed(seed, 11))
        self.value_net = MLP(hidden, "tanh", 1, output_gain=1.0, seed=derive_seed(seed, 12))
        for net in (self.policy_net, self.value_net):
            net.build((None, BOX_OBSERVATIONS.shape[0]))
        self.log_std = None if self.discrete else self.add_weight(
            shape=(action_dim,), initializer=keras.initializers.Constant(log_std_init), name="log_std")

    @staticmethod
    def _mlp(net: MLP, x: tf.Tensor) -> tf.Tensor:
        for layer in net.hidden:
            x = tf.tanh(layer(x))
        return net.head(x)

    def call(self, observations):
        policy = self._mlp(self.policy_net, observations)
        values = tf.squeeze(self._mlp(self.value_net, observations), axis=-1)
        return (policy if self.discrete else (policy, self.log_std)), values

    def log_prob_and_entropy(self, policy_output, actions):
        if self.discrete:
            return (distributions.categorical_log_prob(policy_output, actions),
                    distributions.categorical_entropy(policy_output))
        mean, log_std = policy_output
        actions = tf.reshape(actions, tf.shape(mean))
        return (distributions.gaussian_log_prob(mean, log_std, actions),
                distributions.gaussian_entropy(log_std, tf.shape(actions)[0]))

    def packed(self) -> np.ndarray:
        """The weights in ActorCritic's layout: the first layers side by side, then pi and vf in turn, log_std."""
        policy, value = ([(layer.kernel.numpy(), layer.bias.numpy()) for layer in net.dense_layers()]
                         for net in (self.policy_net, self.value_net))
        pieces = [np.concatenate([policy[0][0], value[0][0]], axis=1), np.concatenate([policy[0][1], value[0][1]])]
        for (policy_kernel, policy_bias), (value_kernel, value_bias) in zip(policy[1:], value[1:]):
            pieces += [policy_kernel, policy_bias, value_kernel, value_bias]
        if self.log_std is not None:
            pieces.append(self.log_std.numpy())
        return np.concatenate([piece.reshape(-1) for piece in pieces])


@pytest.mark.parametrize("hidden", [(16, 8), ()])
@pytest.mark.parametrize("action_space", ACTION_SPACES)
@pytest.mark.parametrize("kind", ["rmsprop", "adam"])
def test_the_flat_actor_critic_is_two_sb3_mlps_in_one_variable(hidden, action_space, kind):
    """Same initialization, outputs and loss, and a clipped optimizer step on the one flat variable
    lands on the same weights as the same step on the separate variables."""
    flat = ActorCritic(BOX_OBSERVATIONS, action_space, hidden, "tanh", log_std_init=-0.5, seed=3)
    reference = TwoMLPs(action_space, hidden, seed=3, log_std_init=-0.5)
    assert [variable.name for variable in flat.variables] == ["params"]
    assert len(reference.trainable_variables) == 2 * 2 * (len(hidden) + 1) + (not reference.discrete)
    np.testing.assert_array_equal(flat.params.numpy(), reference.packed())
    rng = np.random.default_rng(4)
    observations = tf.constant(rng.uniform(-1, 1, (9, 5)).astype(np.float32))
    action_space.seed(0)
    actions = tf.constant(np.stack([action_space.sample() for _ in range(9)]))
    advantages, returns = (tf.constant(rng.normal(size=9).astype(np.float32)) for _ in range(2))
    for ours, theirs in zip(tf.nest.flatten(flat(observations)), tf.nest.flatten(reference(observations))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    losses = {}
    for name, policy in (("flat", flat), ("reference", reference)):
        optimizer = TorchStyleOptimizer(policy.trainable_variables, kind, epsilon=1e-5)
        for _ in range(3):  # several steps: the optimizer state must match too
            with tf.GradientTape() as tape:
                losses[name] = a2c_loss(policy, observations, actions, advantages, returns, 0.01, 0.5, True)
            # max_grad_norm small enough to clip: the global norm spans all pieces alike
            clipped_step(optimizer, tape, losses[name].total, policy.trainable_variables, tf.constant(1e-2), 0.05)
    for term in ("total", "policy_loss", "value_loss", "entropy_loss"):
        # atol: the value loss is ~1e-3 after three steps, where float32 summation order shows at 3e-5
        np.testing.assert_allclose(getattr(losses["flat"], term), getattr(losses["reference"], term),
                                   rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(flat.params.numpy(), reference.packed(), rtol=1e-5, atol=1e-6)


def test_action_and_value_heads_use_sb3_initialization():
    model = ActorCritic(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), (64, 64), "tanh", seed=0)
    pieces = model.split(model.params.numpy())
    first_kernel, policy_hidden, value_hidden, policy_head, value_head = pieces[0:10:2]
    # Orthogonal, so the singular values equal the gain: sqrt(2) hidden, 0.01 action head, 1 value head.
    for kernel, gain in ((first_kernel[:, :64], 2**0.5), (first_kernel[:, 64:], 2**0.5), (policy_hidden, 2**0.5),
                         (value_hidden, 2**0.5), (policy_head, 0.01), (value_head, 1.0)):
        np.testing.assert_allclose(np.linalg.svd(kernel, compute_uv=False), gain, rtol=1e-4)


# ----------------------------------------------------------------------------- NumPy acting == TF
@pytest.mark.parametrize("hidden", [(16, 8), ()])
@pytest.mark.parametrize("action_space", ACTION_SPACES)
@pytest.mark.parametrize("observation_space", OBSERVATION_SPACES)
def test_numpy_actor_critic_matches_tf(observation_space, action_space, hidden):
    model = ActorCritic(observation_space, action_space, hidden, "tanh", log_std_init=-0.5, seed=3)
    mirror = NumpyActorCritic(model, observation_space)
    observations = _observations(observation_space)
    policy_output, values = model(tf.constant(observations))
    np_output, np_values = mirror.forward(observations)
    np.testing.assert_allclose(np_output, policy_output if model.discrete else policy_output[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_values, values, rtol=1e-5, atol=1e-6)
    if not model.discrete:
        np.testing.assert_array_equal(mirror.log_std, [-0.5, -0.5])
        np.testing.assert_array_equal(policy_output[1], mirror.log_std)


@pytest.mark.parametrize("hidden,latent_dim", [((8, 5), 5), ((), 5)])
def test_numpy_actor_critic_hands_gsde_the_same_latent(hidden, latent_dim):
    sde = distributions.StateDependentNoise(2, full_std=False)
    model = ActorCritic(BOX_OBSERVATIONS, ACTION_SPACES[1], hidden, "tanh", log_std_init=-1.0, seed=3, sde=sde)
    observations = _observations(BOX_OBSERVATIONS)
    (mean, log_std, latent), values = model(tf.constant(observations))
    assert log_std.shape == (latent_dim, 1)
    for ours, theirs in zip(NumpyActorCritic(model, BOX_OBSERVATIONS).forward_with_latent(observations),
                            (mean, values, latent)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("hidden", [(16, 8), ()])
@pytest.mark.parametrize("observation_space", OBSERVATION_SPACES)
def test_numpy_q_network_matches_tf(observation_space, hidden, dueling):
    network = QNetwork(observation_space, 3, hidden, "relu", dueling)
    observations = _observations(observation_space)
    np.testing.assert_allclose(NumpyForward(network, observation_space)(observations),
                               network(tf.constant(observations)), rtol=1e-5, atol=1e-6)


def test_numpy_forward_takes_the_weights_an_update_hands_back():
    network = QNetwork(BOX_OBSERVATIONS, 3, (8,), "relu", dueling=True)
    mirror = NumpyForward(network, BOX_OBSERVATIONS)
    observations = _observations(BOX_OBSERVATIONS)
    for variable in network.trainable_variables:
        variable.assign(variable * 2.0 + 0.1)
    assert not np.allclose(mirror(observations), network(tf.constant(observations)))
    mirror.load(network.acting_weights().numpy())
    np.testing.assert_allclose(mirror(observations), network(tf.constant(observations)), rtol=1e-5, atol=1e-6)
    for piece, weight in zip(mirror.pieces, network.weight_pieces()):
        np.testing.assert_array_equal(piece, weight.numpy())


def test_numpy_forward_refuses_images():
    from wrappers.fake_envs import RandomImageEnv

    space = RandomImageEnv(shape=(1, 36, 36)).observation_space
    model = ActorCritic(space, gym.spaces.Discrete(2), (), "tanh", seed=0)
    message = r"NumpyForward runs MLPs on vector observations; images Box\(0, 255, \(1, 36, 36\), uint8\) act in TF"
    with pytest.raises(ValueError, match=message):
        NumpyForward(model, space)


# ----------------------------------------------------------------------------- saved names
def test_saved_names_are_those_of_earlier_files():
    """Files name each variable by its attribute path (core.saved_variables): these must not move."""
    from wrappers.fake_envs import RandomImageEnv

    mlp = ActorCritic(BOX_OBSERVATIONS, ACTION_SPACES[1], (8,), "tanh", seed=0)
    assert list(saved_variables.named_variables(mlp)) == ["params"]
    cnn = ActorCritic(RandomImageEnv(shape=(4, 36, 36)).observation_space, ACTION_SPACES[1], (8,), "tanh", seed=0)
    assert list(saved_variables.named_variables(cnn)) == [  # in the order of cnn.variables
        "log_std", *(f"features/convs/{i:03d}/{weight}" for i in range(3) for weight in ("kernel", "bias")),
        "features/features/kernel", "features/features/bias", "policy_net/head/kernel", "policy_net/head/bias",
        "value_net/head/kernel", "value_net/head/bias"]
    q_network = QNetwork(BOX_OBSERVATIONS, 3, (8, 8), "relu", dueling=True)
    assert list(saved_variables.named_variables(q_network)) == [
        "trunk/hidden/000/kernel", "trunk/hidden/000/bias", "trunk/hidden/001/kernel", "trunk/hidden/001/bias",
        "advantage/kernel", "advantage/bias", "value/kernel", "value/bias"]


@pytest.mark.parametrize("env_id, kwargs", [("Pendulum-v1", dict(policy_hidden_sizes=(8, 4), log_std_init=-2.0)),
                                             ("Pendulum-v1", dict(use_sde=True, log_std_init=-2.0)),
                                             ("CartPole-v1", dict(policy_hidden_sizes=(8,)))])
def test_torch_network_init_draws_within_fan_in_bounds(env_id, kwargs):
    """network_init="torch" is SB3's ortho_init=False: every kernel and bias U(+-1/sqrt(fan_in));
    log_std keeps log_std_init; the draw is seeded."""
    agent = agents_zoo.make("ppo", env_id, seed=3, network_init="torch", **kwargs)
    pieces = [piece.numpy() for piece in agent.policy.weight_pieces()]
    n_weights = len(pieces) - (0 if agent.policy.discrete else 1)
    for kernel, bias in zip(pieces[0:n_weights:2], pieces[1:n_weights:2]):
        bound = 1.0 / np.sqrt(kernel.shape[0])
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(kernel).max() > 0.5 * bound  # a uniform draw, not orthogonal's unit-norm columns
    if not agent.policy.discrete:
        np.testing.assert_array_equal(pieces[-1], np.full_like(pieces[-1], -2.0))
    again = agents_zoo.make("ppo", env_id, seed=3, network_init="torch", **kwargs)
    np.testing.assert_array_equal(again.policy.acting_weights().numpy(), agent.policy.acting_weights().numpy())
    with pytest.raises(ValueError, match=r"network_init must be one of 'orthogonal', 'torch', got 'xavier'"):
        agents_zoo.make("ppo", env_id, network_init="xavier")
