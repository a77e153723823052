"""The networks the agents act and learn with, each defined once: SB3's actor-critic (PPO, A2C,
GAIL's generator) and DQN's Q-network, and the NumPy path that acts with them.

Each network writes its forward pass once, as ``forward(ops, pieces, features)`` over its
parameter pieces (kernels, biases, ``log_std``) and an array backend (``networks.TF_OPS`` or
``networks.NUMPY_OPS``):

* Keras runs it in TensorFlow on the variables (``call``): the compiled updates, and acting on
  images, one ``tf.function`` call per vector step for all envs at once (A2C's update reads the
  image features' layer outputs that acting kept instead, ``call_on_layers``).
* ``NumpyForward`` runs it in NumPy on a copy of the weights: acting on vector observations.
  One ``tf.function`` call costs 140-320 us on these CPUs, a NumPy MLP forward ~4 us, and an agent
  acts once per vector step. The compiled updates hand the weights back as ONE flat tensor
  (``acting_weights``, one output and one ``.numpy()``), which ``NumpyForward.load`` slices into
  views (``split``).

The actor-critic of vector observations keeps all its parameters in ONE flat variable,
``params``, because its updates cost TF's per-op overhead, not arithmetic (a 64-wide MLP on 40
rows is ~0.1 ms of math in a ~1.5 ms graph): with one variable the optimizer, the gradient
clipping and the hand-back are a handful of ops instead of a handful per variable (an A2C
CartPole update is ~180 graph ops in all), and the pi and vf first layers, which read the same
input, run as one matmul on their concatenated kernels (later layers stay two: no FLOPs added).
The Q-network keeps one Keras layer per layer: DQN's updates are XLA-compiled, which fuses them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf
from gymnasium import spaces

from agents_zoo.core import distributions, networks
from agents_zoo.core.networks import NUMPY_OPS, TF_OPS, ArrayOps
from agents_zoo.core.seeding import derive_seed
from agents_zoo.core.spaces import is_image_space


def features_extractor(observation_space: spaces.Space, compute_dtype: str) -> tuple[keras.Model, int]:
    """The features extractor of an observation space (flatten, or the Nature CNN in
    ``compute_dtype``), built, and the width of the features it outputs."""
    features = networks.make_features_extractor(observation_space, compute_dtype)
    return features, int(networks.build(features, observation_space).shape[-1])


def float32_features(features: tf.Tensor) -> tf.Tensor:
    """The heads are float32: a bf16 CNN's features are cast back (Keras' mixed_bfloat16 convention)."""
    return features if features.dtype == tf.float32 else tf.cast(features, tf.float32)


class PiecewiseNetwork(keras.Model):
    """A Keras model whose forward pass is ``forward(ops, pieces, features)`` (see the module doc).

    Subclasses set ``piece_shapes`` and implement ``weight_pieces`` (the pieces as TF tensors,
    read from the variables) and ``forward``.
    """

    piece_shapes: list[tuple[int, ...]]

    def weight_pieces(self) -> list[tf.Tensor]:
        raise NotImplementedError

    def forward(self, ops: ArrayOps, pieces: Sequence[Any], features: Any) -> Any:
        raise NotImplementedError

    def split(self, flat: Any) -> list[Any]:
        """The pieces of a flat weight vector (``acting_weights``): NumPy views, or TF tensors."""
        sizes = [int(np.prod(shape)) for shape in self.piece_shapes]
        if isinstance(flat, np.ndarray):
            ends = np.cumsum(sizes)
            return [flat[end - size:end].reshape(shape) for end, size, shape in zip(ends, sizes, self.piece_shapes)]
        return [tf.reshape(piece, shape) if len(shape) > 1 else piece
                for piece, shape in zip(tf.split(flat, sizes), self.piece_shapes)]

    def acting_weights(self) -> tf.Tensor:
        """Call after every change of the weights (inside the update graph, or after a load): it
        refreshes what acting on images reads (``NatureCNN.refresh_acting_copies``) and returns all
        pieces as one flat vector for the NumPy path: one tensor out of a compiled update, one ``.numpy()``.
        Image networks act in TF on those copies and return an empty vector: concatenating
        their 1.7M weights for no reader took ~1 ms of a ~15 ms DQN Atari update (one core)."""
        self.features.refresh_acting_copies()
        if isinstance(self.features, networks.NatureCNN):
            return tf.zeros([0], tf.float32)
        return tf.concat([tf.reshape(piece, [-1]) for piece in self.weight_pieces()], axis=0)

    def acting_features(self, observations: tf.Tensor) -> tf.Tensor:
        """The features on the weights acting reads (the same numbers as ``call``'s, see ``acting_weights``)."""
        return float32_features(self.features.acting_call(observations))


# ----------------------------------------------------------------------------- actor-critic
class ActorCritic(PiecewiseNetwork):
    """SB3's actor-critic policy: separate pi and vf networks on shared features, SB3's initialization.

    Vector observations (flattened, one-hot for Discrete): pi and vf MLPs of ``hidden_sizes``
    (SB3 ``net_arch=dict(pi=..., vf=...)``), all parameters in the flat variable ``params``.
    Images: one Nature CNN shared by both, with linear heads (SB3's CnnPolicy, ``net_arch=[]``),
    kept as the Keras layers ``policy_net.head`` and ``value_net.head`` (and a ``log_std``
    variable for Box actions), the variables files of image policies hold. Orthogonal init, gain
    sqrt(2) hidden, 0.01 for the action head, 1 for the value head (Andrychowicz et al. 2021,
    "What matters in on-policy RL", decision C57). Box actions get a state-independent
    ``log_std`` vector filled with ``log_std_init``, or with ``sde`` (gSDE) its
    (latent_dim, action_dim or 1) matrix, latent_dim being the width of the policy's last hidden
    layer (the features' width with no hidden layers).

    The pieces, in order (``params`` is them concatenated, each kernel row-major):

    * the first layer: kernel ``[W_pi | W_vf]`` (features, h_pi + h_vf), bias ``[b_pi, b_vf]``
      (with no hidden layers, images included, the first layer is the heads: (features, action_dim + 1));
    * each later layer, the heads last: pi kernel, pi bias, vf kernel, vf bias;
    * ``log_std`` (Box actions).

    ``call`` returns (logits, values) for Discrete actions, ((means, log_std), values) for Box
    actions and ((means, log_std, latent), values) with gSDE, ``latent`` being the policy's last
    hidden features: the policy output is passed whole to ``log_prob_and_entropy``.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, hidden_sizes: Sequence[int],
                 activation: str, log_std_init: float = 0.0, seed: int | None = None, compute_dtype: str = "float32",
                 sde: distributions.StateDependentNoise | None = None):
        super().__init__(name="actor_critic")
        self.is_image = is_image_space(observation_space)
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.action_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if sde is not None and (self.discrete or self.is_image):
            raise ValueError(f"gSDE needs Box actions and vector observations, got {action_space} and "
                             f"{observation_space}")
        self.sde = sde
        self.activation_name = activation
        self.hidden_sizes = () if self.is_image else tuple(int(size) for size in hidden_sizes)
        self.features, width = features_extractor(observation_space, compute_dtype)
        latent_dim = self.hidden_sizes[-1] if self.hidden_sizes else width
        log_std_shape = (None if self.discrete else sde.log_std_shape(latent_dim) if sde is not None
                         else (self.action_dim,))
        self.piece_shapes = self._piece_shapes(width, log_std_shape)
        policy_seed, value_seed = derive_seed(seed, 11), derive_seed(seed, 12)
        self.params = self.policy_net = self.value_net = self.log_std = None
        if self.is_image:
            self.policy_net = networks.MLP((), activation, self.action_dim, output_gain=0.01, seed=policy_seed,
                                           name="policy_net")
            self.value_net = networks.MLP((), activation, 1, output_gain=1.0, seed=value_seed, name="value_net")
            self.policy_net.build((None, width))
            self.value_net.build((None, width))
            if log_std_shape is not None:
                self.log_std = self.add_weight(shape=log_std_shape, name="log_std",
                                               initializer=keras.initializers.Constant(log_std_init))
        else:
            # The variable before its initial values: a load spends the file's parameter budget in
            # add_weight (core.load_limits), which must refuse a crafted width before the orthogonal
            # draws below allocate it (an 8192-wide file took ~2 GB and minutes there).
            self.params = self.add_weight(shape=(sum(math.prod(shape) for shape in self.piece_shapes),),
                                          initializer="zeros", name="params")
            policy = networks.mlp_initial_weights(width, self.hidden_sizes, self.action_dim, 0.01, policy_seed)
            value = networks.mlp_initial_weights(width, self.hidden_sizes, 1, 1.0, value_seed)
            pieces = self._pack(policy, value)
            if log_std_shape is not None:
                pieces.append(np.full(log_std_shape, log_std_init, np.float32))
            self.params.assign(np.concatenate([piece.reshape(-1) for piece in pieces]))
        networks.build(self, observation_space)

    def _piece_shapes(self, width: int, log_std_shape: tuple[int, ...] | None) -> list[tuple[int, ...]]:
        sizes = [*self.hidden_sizes, self.action_dim]
        first = sizes[0] * 2 if self.hidden_sizes else self.action_dim + 1
        shapes = [(width, first), (first,)]
        for fan_in, policy_out, value_out in zip(sizes, sizes[1:], [*self.hidden_sizes[1:], 1]):
            shapes += [(fan_in, policy_out), (policy_out,), (fan_in, value_out), (value_out,)]
        return shapes + ([] if log_std_shape is None else [tuple(log_std_shape)])

    @staticmethod
    def _pack(policy: list[tuple[np.ndarray, np.ndarray]],
              value: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """The pieces of two towers' (kernel, bias) lists: first layers concatenated, later ones in turn."""
        (policy_kernel, policy_bias), (value_kernel, value_bias) = policy[0], value[0]
        pieces = [np.concatenate([policy_kernel, value_kernel], axis=1), np.concatenate([policy_bias, value_bias])]
        for (policy_kernel, policy_bias), (value_kernel, value_bias) in zip(policy[1:], value[1:]):
            pieces += [policy_kernel, policy_bias, value_kernel, value_bias]
        return pieces

    def weight_pieces(self) -> list[tf.Tensor]:
        if self.params is not None:
            return self.split(tf.convert_to_tensor(self.params))
        policy, value = self.policy_net.head, self.value_net.head
        pieces = [tf.concat([policy.kernel, value.kernel], axis=1), tf.concat([policy.bias, value.bias], axis=0)]
        return pieces + ([] if self.log_std is None else [tf.convert_to_tensor(self.log_std)])

    def acting_weights(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.params) if self.params is not None else super().acting_weights()

    def torch_default_init(self, rng: np.random.Generator) -> None:
        """Redraw every kernel and bias as ``torch.nn`` does by default, U(+-1/sqrt(fan_in)) (SB3's
        ``ortho_init=False``); ``log_std`` keeps ``log_std_init``."""
        if self.params is None:  # images: Keras layers (the CNN and the heads)
            networks.torch_default_init(self, rng)
            return
        pieces = [piece.numpy() for piece in self.weight_pieces()]
        n_weights = len(pieces) - (0 if self.discrete else 1)  # the last piece is log_std for Box actions
        for index in range(0, n_weights, 2):  # (kernel, bias) pairs; the first layer's pi|vf halves share fan_in
            bound = 1.0 / np.sqrt(pieces[index].shape[0])
            pieces[index] = rng.uniform(-bound, bound, pieces[index].shape)
            pieces[index + 1] = rng.uniform(-bound, bound, pieces[index + 1].shape)
        self.params.assign(np.concatenate([piece.reshape(-1) for piece in pieces]).astype(np.float32))

    def acting_heads(self, observations: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``heads`` on the acting copies of the image features: the compiled acting call of images."""
        return self.forward(TF_OPS, self.weight_pieces(), self.acting_features(observations))

    def acting_heads_and_layers(self, observations: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """(policy output, values) as ``acting_heads`` computes them, and the image features' layer
        outputs (``NatureCNN.acting_layers``) that ``call_on_layers`` takes back."""
        layers_out = self.features.acting_layers(observations)
        policy, values, _ = self.forward(TF_OPS, self.weight_pieces(), float32_features(layers_out[-1]))
        return policy, values, layers_out

    def forward(self, ops: ArrayOps, pieces: Sequence[Any], features: Any) -> tuple[Any, Any, Any]:
        """(logits or Gaussian means, values, latent) for a batch of features; ``latent`` is the
        action head's input: the policy's last hidden layer, or the features with no hidden layers."""
        activation = ops.activation(self.activation_name)
        x = ops.affine(features, pieces[0], pieces[1])
        if not self.hidden_sizes:  # the first layer is the heads
            policy, value = ops.split(x, self.action_dim)
            return policy, ops.squeeze(value), features
        policy, value = ops.split(activation(x), self.hidden_sizes[0])
        n_later = len(self.hidden_sizes) - 1
        for index in range(n_later + 1):
            policy_kernel, policy_bias, value_kernel, value_bias = pieces[2 + 4 * index:6 + 4 * index]
            latent = policy
            policy, value = ops.affine(policy, policy_kernel, policy_bias), ops.affine(value, value_kernel, value_bias)
            if index < n_later:
                policy, value = activation(policy), activation(value)
        return policy, ops.squeeze(value), latent

    def heads(self, observations: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``forward`` in TF on the variables: (logits or means, values, latent)."""
        return self.forward(TF_OPS, self.weight_pieces(), float32_features(self.features(observations)))

    def call(self, observations: tf.Tensor) -> tuple[Any, tf.Tensor]:
        return self._policy_output_and_values(float32_features(self.features(observations)))

    def call_on_layers(self, observations: tf.Tensor, layers_out: Sequence[tf.Tensor]) -> tuple[Any, tf.Tensor]:
        """``call(observations)``'s outputs and gradients from the image features' layer outputs
        that acting computed on the current weights, without running the CNN forward again
        (``NatureCNN.features_from_layers``)."""
        return self._policy_output_and_values(float32_features(self.features.features_from_layers(observations,
                                                                                                  layers_out)))

    def _policy_output_and_values(self, features: tf.Tensor) -> tuple[Any, tf.Tensor]:
        pieces = self.weight_pieces()
        policy, values, latent = self.forward(TF_OPS, pieces, features)
        if self.discrete:
            return policy, values
        if self.sde is not None:
            return (policy, pieces[-1], latent), values
        return (policy, pieces[-1]), values

    def log_prob_and_entropy(self, policy_output: Any, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Per-sample log pi(a | s) and entropy of the distribution ``call`` returned."""
        if self.discrete:
            # log pi(a) as a one-hot dot product: the same value as a gather, with a cheaper gradient.
            log_probs = tf.nn.log_softmax(policy_output)
            chosen = tf.reduce_sum(log_probs * tf.one_hot(tf.cast(actions, tf.int32), self.action_dim), axis=-1)
            return chosen, -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
        actions = tf.reshape(actions, [-1, self.action_dim])
        if self.sde is not None:
            return self.sde.log_prob_and_entropy(*policy_output, actions)
        mean, log_std = policy_output
        return (distributions.gaussian_log_prob(mean, log_std, actions),
                distributions.gaussian_entropy(log_std, tf.shape(actions)[0]))


# ----------------------------------------------------------------------------- Q-network
class QNetwork(PiecewiseNetwork):
    """Features (flatten or Nature CNN) -> hidden MLP -> Q-values, optionally with a dueling head.

    Pieces: each trunk layer's kernel and bias, then the advantage head's, then (dueling) the
    value head's. Initialization: orthogonal (gain sqrt(2) hidden, 1 heads); DQN redraws it with
    ``networks.torch_default_init`` for SB3's starting point.
    """

    def __init__(self, observation_space: spaces.Space, n_actions: int, hidden_sizes: tuple[int, ...],
                 activation: str, dueling: bool, name: str | None = None, compute_dtype: str = "float32"):
        super().__init__(name=name)
        self.features, width = features_extractor(observation_space, compute_dtype)
        self.trunk = networks.MLP(hidden_sizes, activation, output_size=None)
        self.dueling = dueling
        self.advantage = networks.dense(n_actions, 1.0, name="advantage")
        self.value = networks.dense(1, 1.0, name="value") if dueling else None
        self.trunk.build((None, width))
        trunk_width = hidden_sizes[-1] if hidden_sizes else width
        for head in (self.advantage, self.value):
            if head is not None:
                head.build((None, trunk_width))
        self.piece_shapes = [tuple(piece.shape) for piece in self.weight_pieces()]
        networks.build(self, observation_space)

    def weight_pieces(self) -> list[Any]:
        heads = [self.advantage] if self.value is None else [self.advantage, self.value]
        return [weight for layer in [*self.trunk.hidden, *heads] for weight in (layer.kernel, layer.bias)]

    def forward(self, ops: ArrayOps, pieces: Sequence[Any], features: Any) -> Any:
        """Q-values for a batch of features."""
        n_trunk = 2 * len(self.trunk.hidden)
        hidden = networks.activated_layers(ops, list(zip(pieces[0:n_trunk:2], pieces[1:n_trunk:2])), features,
                                           self.trunk.activation_name)
        advantages = ops.affine(hidden, pieces[n_trunk], pieces[n_trunk + 1])
        if not self.dueling:
            return advantages
        # Wang et al. 2016, eq. 9: subtracting the mean advantage makes V and A identifiable.
        return ops.affine(hidden, pieces[n_trunk + 2], pieces[n_trunk + 3]) + advantages - ops.row_mean(advantages)

    def call(self, observations: tf.Tensor) -> tf.Tensor:
        return self.forward(TF_OPS, self.weight_pieces(), float32_features(self.features(observations)))

    def call_on_fresh_copies(self, observations: tf.Tensor) -> tf.Tensor:
        """``call``, reading the features' fresh compute-dtype copies (``NatureCNN.call_on_fresh_copies``)."""
        return self.forward(TF_OPS, self.weight_pieces(), float32_features(self.features.call_on_fresh_copies(observations)))

    def acting_q_values(self, observations: tf.Tensor) -> tf.Tensor:
        """``call`` on the acting copies of the image features: greedy actions, and the target
        network's values (its weights change only at a target update)."""
        return self.forward(TF_OPS, self.weight_pieces(), self.acting_features(observations))


# ----------------------------------------------------------------------------- acting in NumPy
class NumpyForward:
    """A network's ``forward`` in NumPy on a copy of its weights: the acting path of vector observations."""

    def __init__(self, network: PiecewiseNetwork, observation_space: spaces.Space):
        if is_image_space(observation_space):
            raise ValueError(f"NumpyForward runs MLPs on vector observations; images {observation_space} act in TF")
        self.network, self.observation_space = network, observation_space
        self.load(network.acting_weights().numpy())

    def load(self, flat_weights: np.ndarray) -> None:
        """Act with these weights from now on (``network.acting_weights()``, as the updates return them)."""
        self.pieces = self.network.split(np.asarray(flat_weights, dtype=np.float32))

    def __call__(self, observations: np.ndarray) -> Any:
        features = networks.preprocess_numpy(self.observation_space, observations)
        return self.network.forward(NUMPY_OPS, self.pieces, features)


class NumpyActorCritic(NumpyForward):
    """``NumpyForward`` of an ``ActorCritic``, by the names the acting code reads."""

    network: ActorCritic

    def forward_with_latent(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits or means, values, latent): latent is gSDE's features (see ``ActorCritic.forward``)."""
        return self(observations)

    def forward(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits or means, values)."""
        policy, values, _ = self(observations)
        return policy, values

    @property
    def log_std(self) -> np.ndarray | None:
        return None if self.network.discrete else self.pieces[-1]


def sample_actions(policy_output: np.ndarray, log_std: np.ndarray | None, rng: np.random.Generator,
                   deterministic: bool) -> tuple[np.ndarray, np.ndarray]:
    """(actions, log-probabilities) from logits (Categorical) or means (diagonal Gaussian)."""
    if log_std is None:
        return distributions.np_categorical_sample(policy_output, rng, deterministic)
    return distributions.np_gaussian_sample(policy_output, log_std, rng, deterministic)
