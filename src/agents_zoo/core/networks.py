"""Building blocks of the agents' networks: MLPs, the Nature-DQN CNN, and the array backends
that let a network write its forward pass once and run it in TensorFlow or in NumPy.

Channel-first images (C, H, W) are accepted at the boundary and transposed to NHWC inside,
because TF's CPU convolutions only implement NHWC. Initialization follows SB3/CleanRL:
orthogonal weights with gain sqrt(2) in hidden layers and zero biases; heads pick their gain.
The networks themselves (actor-critic, Q-network) and their NumPy acting path are in
``core.policies``.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf
from gymnasium import spaces
from keras import layers

from agents_zoo.core.config import AgentConfig
from agents_zoo.core.spaces import UnsupportedSpaceError, image_is_channel_first, is_image_space

HIDDEN_GAIN = math.sqrt(2.0)


def orthogonal(gain: float, seed: int | None = None) -> keras.initializers.Initializer:
    return keras.initializers.Orthogonal(gain=gain, seed=seed)


def dense(units: int, gain: float, activation: str | None = None, name: str | None = None, seed: int | None = None,
          dtype: str | None = None) -> layers.Dense:
    return layers.Dense(units, activation=activation, kernel_initializer=orthogonal(gain, seed),
                        bias_initializer="zeros", name=name, dtype=dtype)


NETWORK_INITS = ("orthogonal", "torch")  # the network_init setting of every agent that has one


def torch_default_init(model: keras.Model, rng: np.random.Generator) -> None:
    """Redraw every Dense and Conv2D kernel and bias as ``torch.nn`` initializes them by default:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5), and the bias rule).

    SB3's DQN networks keep these defaults (it applies orthogonal init in its actor-critic
    policies only), so this is how a DQN matches SB3's starting point.
    """
    for layer in model._flatten_layers():
        if isinstance(layer, (layers.Dense, layers.Conv2D)):
            fan_in = int(np.prod(layer.kernel.shape[:-1]))
            bound = 1.0 / math.sqrt(fan_in)
            for variable in (layer.kernel, layer.bias):
                if variable is not None:
                    variable.assign(rng.uniform(-bound, bound, variable.shape).astype(np.float32))


# ----------------------------------------------------------------------------- array backends
class ArrayOps(NamedTuple):
    """The array operations of the forward passes, in TensorFlow or in NumPy.

    A network writes its forward pass once, over its parameter pieces and an ``ArrayOps``; Keras
    runs it in TF on the variables (training), the acting path in NumPy on copies of the weights
    (one ``tf.function`` call costs 140-320 us on these CPUs, a NumPy MLP forward ~4 us).
    """

    affine: Callable[[Any, Any, Any], Any]  # x @ kernel + bias
    activation: Callable[[str | None], Callable[[Any], Any]]  # the function of an activation name
    split: Callable[[Any, int], tuple[Any, Any]]  # columns [:n] and [n:]
    squeeze: Callable[[Any], Any]  # (batch, 1) -> (batch,)
    row_mean: Callable[[Any], Any]  # mean over columns, kept as a (batch, 1) column


def _tf_affine(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    # bias_add, not +: the same sums, and its gradient is one BiasAddGrad instead of a
    # broadcast-gradient Sum + Reshape + shape ops (the updates pay TF's per-op cost).
    return tf.nn.bias_add(tf.matmul(x, kernel), bias)


def _tf_activation(name: str | None) -> Callable[[tf.Tensor], tf.Tensor]:
    return (lambda x: x) if name is None else keras.activations.get(name)


_NUMPY_ACTIVATIONS: dict[str | None, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    # NumPy has no erf: the tanh form, within 5e-4 of the exact GELU that Keras (and torch) compute.
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3))),
    None: lambda x: x,
}

TF_OPS = ArrayOps(
    affine=_tf_affine,
    activation=_tf_activation,
    split=lambda x, n: tuple(tf.split(x, [n, -1], axis=1)),
    squeeze=lambda x: tf.squeeze(x, axis=-1),
    row_mean=lambda x: tf.reduce_mean(x, axis=1, keepdims=True),
)
NUMPY_OPS = ArrayOps(
    affine=lambda x, kernel, bias: x @ kernel + bias,
    activation=_NUMPY_ACTIVATIONS.__getitem__,
    split=lambda x, n: (x[:, :n], x[:, n:]),  # views, and cheaper than np.split's generic path
    squeeze=lambda x: x[:, 0],
    row_mean=lambda x: x.mean(axis=1, keepdims=True),
)


def activated_layers(ops: ArrayOps, weights: Sequence[tuple[Any, Any]], x: Any, activation: str | None) -> Any:
    """``activation(x @ kernel + bias)`` through each (kernel, bias) in turn: an MLP's hidden layers."""
    function = ops.activation(activation)
    for kernel, bias in weights:
        x = function(ops.affine(x, kernel, bias))
    return x


# ----------------------------------------------------------------------------- MLPs
def _mlp_layers(hidden_sizes: Sequence[int], output_size: int | None, output_gain: float,
                seed: int | None) -> list[tuple[int, float, int | None]]:
    """(units, orthogonal gain, initializer seed) of each layer of an MLP, the head last."""
    def offset(index: int) -> int | None:
        return None if seed is None else seed + index

    stack = [(int(size), HIDDEN_GAIN, offset(index)) for index, size in enumerate(hidden_sizes)]
    if output_size is not None:
        stack.append((int(output_size), output_gain, offset(99)))
    return stack


def mlp_initial_weights(input_size: int, hidden_sizes: Sequence[int], output_size: int | None, output_gain: float = 1.0,
                        seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of each layer, as ``MLP`` with the same arguments initializes them, without Keras layers:
    for networks that store their parameters in one flat variable (``core.policies.ActorCritic``)."""
    weights = []
    for units, gain, seed_of_layer in _mlp_layers(hidden_sizes, output_size, output_gain, seed):
        kernel = np.asarray(orthogonal(gain, seed_of_layer)((input_size, units), dtype="float32"))
        weights.append((kernel, np.zeros(units, np.float32)))
        input_size = units
    return weights


class MLP(keras.Model):
    """Hidden layers with ``activation`` then a linear output layer (omitted if ``output_size`` is None).

    Its layers hold the weights (saved as ``hidden/000/kernel``, ``head/bias``, ...); the forward
    pass is ``activated_layers``, so a network built on an MLP runs the same math in NumPy.
    """

    def __init__(self, hidden_sizes: Sequence[int], activation: str, output_size: int | None,
                 output_gain: float = 1.0, seed: int | None = None, name: str | None = None):
        super().__init__(name=name)
        self.activation_name = activation
        stack = [dense(units, gain, seed=seed_of_layer)
                 for units, gain, seed_of_layer in _mlp_layers(hidden_sizes, output_size, output_gain, seed)]
        self.hidden = stack[:len(hidden_sizes)]
        self.head = stack[-1] if output_size is not None else None

    def build(self, input_shape: Sequence[int | None]) -> None:
        width = input_shape[-1]
        for layer in self.dense_layers():
            layer.build((None, width))
            width = layer.units

    def dense_layers(self) -> list[layers.Dense]:
        return [*self.hidden, *([] if self.head is None else [self.head])]

    def hidden_weights(self) -> list[tuple[Any, Any]]:
        """(kernel, bias) of each hidden layer, for ``activated_layers``."""
        return [(layer.kernel, layer.bias) for layer in self.hidden]

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = activated_layers(TF_OPS, self.hidden_weights(), inputs, self.activation_name)
        return x if self.head is None else TF_OPS.affine(x, self.head.kernel, self.head.bias)


@functools.cache  # the hardware does not change: read /proc/cpuinfo once, not per network built
def hardware_has_bfloat16() -> bool:
    """Whether bf16 matrix math runs natively here: a GPU of compute capability >= 8.0 (Ampere),
    or an x86 CPU with AVX512_BF16 or AMX-BF16, which oneDNN uses for convolutions and matmuls.
    Elsewhere TF emulates bf16, about 10x slower than float32 (see ``image_dtype_policy``)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return True
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap way to ask, so stay on float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def image_dtype_policy(compute_dtype: str) -> str:
    """The Keras dtype policy of the Nature CNN for an agent's ``compute_dtype`` setting.

    ``bfloat16`` is Keras' ``mixed_bfloat16``: float32 variables (the optimizer updates float32
    master weights), bf16 convolutions and matmuls; the heads and the losses stay float32. bf16
    keeps float32's exponent range, so unlike float16 it needs no loss scaling.
    """
    if compute_dtype not in AgentConfig.COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {', '.join(map(repr, AgentConfig.COMPUTE_DTYPES))}, "
                         f"got {compute_dtype!r}")
    if compute_dtype == "auto":
        compute_dtype = "bfloat16" if hardware_has_bfloat16() else "float32"
    elif compute_dtype == "bfloat16" and not hardware_has_bfloat16():
        # One Nature-CNN train step on 256 frames, one thread of an AVX2 Zen 3: 3.39 s in bf16
        # against 0.31 s in float32 (benchmarks/bench_cnn_step.py, results/cnn_step/).
        warnings.warn("compute_dtype='bfloat16' on hardware without native bf16 (no AVX512_BF16 or AMX-BF16 CPU, "
                      "no GPU of compute capability >= 8.0): TensorFlow emulates it, about 10x slower than "
                      "float32; 'auto' picks float32 here", RuntimeWarning, stacklevel=2)
    return "mixed_bfloat16" if compute_dtype == "bfloat16" else "float32"


def _channel_last_in(dtype: tf.DType) -> Callable[[tf.Tensor], tf.Tensor]:
    # TF's own Transpose of uint8 frames (N, 4, 84, 84) -> (N, 84, 84, 4), whose innermost output
    # dimension is 4, took ~10 ms of a ~60 ms PPO minibatch step (256 frames, one core); XLA's took
    # ~1.7 ms with the cast fused in, the same values. A compiled island inside the non-XLA graphs
    # (the convolutions stay on oneDNN, which XLA's CPU backend is slower at: see agents/dqn.py).
    return tf.function(lambda frames: tf.transpose(tf.cast(frames, dtype), [0, 2, 3, 1]), jit_compile=True,
                       reduce_retracing=True)


_CHANNEL_LAST = {dtype: _channel_last_in(dtype) for dtype in (tf.float32, tf.bfloat16)}


class NatureCNN(keras.Model):
    """Mnih et al. 2015 (Nature) encoder: uint8 frames in, a 512-feature vector out.

    Frames stay uint8 in storage and are scaled to [0, 1] here, so replay buffers hold bytes.
    ``dtype_policy`` "mixed_bfloat16" runs the convolutions and the feature layer in bf16 (see
    ``image_dtype_policy``); the 512 features come out in that dtype and the float32 heads cast
    them back.

    The Keras layers hold the float32 weights (saved as ``convs/0/kernel`` ... ``features/bias``);
    the forward pass is written once, ``encode(inputs, weights)``. Training runs it on the weights
    cast to the compute dtype inside the graph (the gradients flow back through the cast, as in
    Keras' mixed precision). Acting runs it on compute-dtype copies (``acting_call``) that
    ``refresh_acting_copies`` makes once per change of the weights: in bf16 an acting call would
    otherwise cast all 1.7M weights for a batch of 1-16 frames, which took about half of it here.
    An update that starts from the weights acting used may skip the forward pass altogether and
    run only the backward one on the layer outputs acting kept (``acting_layers``,
    ``features_from_layers``: A2C's).
    """

    STRIDES = (4, 2, 1)
    PADDING = "VALID"

    def __init__(self, observation_space: spaces.Box, features_dim: int = 512, name: str | None = None,
                 dtype_policy: str = "float32"):
        super().__init__(name=name)
        if len(observation_space.shape) != 3:
            raise UnsupportedSpaceError(f"NatureCNN needs (C, H, W) or (H, W, C) images, got shape {observation_space.shape}")
        self.channel_first = image_is_channel_first(observation_space)
        self.scale = 1.0 / 255.0 if observation_space.dtype == np.uint8 else 1.0
        self.compute = tf.bfloat16 if dtype_policy == "mixed_bfloat16" else tf.float32
        self.convs = [layers.Conv2D(filters, kernel, strides=stride, kernel_initializer=orthogonal(HIDDEN_GAIN),
                                    dtype=dtype_policy)
                      for filters, kernel, stride in zip((32, 64, 64), (8, 4, 3), self.STRIDES)]
        self.features = dense(features_dim, HIDDEN_GAIN, dtype=dtype_policy)
        # Not attributes Keras tracks: the copies are derived from the weights, never saved.
        self._acting = _AttributeHolder(copies=[])

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels, height, width = input_shape[1:] if self.channel_first else (input_shape[3], *input_shape[1:3])
        shape: tuple[Any, ...] = (None, height, width, channels)
        for conv in self.convs:
            conv.build(shape)
            shape = tuple(conv.compute_output_shape(shape))
        self.features.build((None, math.prod(shape[1:])))
        if self.compute != tf.float32:
            self._acting.copies = [tf.Variable(tf.cast(weight, self.compute), trainable=False)
                                   for weight in self.float32_weights()]
        self.built = True

    def float32_weights(self) -> list[Any]:
        """kernel, bias of each convolution, then of the feature layer: ``encode``'s order."""
        return [weight for layer in [*self.convs, self.features] for weight in (layer.kernel, layer.bias)]

    def encode(self, inputs: tf.Tensor, weights: Sequence[tf.Tensor]) -> tf.Tensor:
        """The forward pass on ``weights`` (``float32_weights``' order, in the compute dtype);
        ``features_from_layers`` runs its backward pass by hand and must follow any change here."""
        # uint8 pixels are exact in bf16 (8 significant bits hold 0..256). conv(x * s, W) ==
        # conv(x, W * s): scaling the first kernel (8k values) instead of the frames (256 x 4 x 84 x 84
        # values per PPO minibatch) saved an elementwise pass over every input. The first convolution
        # stays 8x8 stride 4 on 4 channels: as space-to-depth (a 2x2 convolution on 21x21x64, the
        # same sums) it ran ~15% faster alone at 32 frames, but the 6-d input transpose made a DQN
        # Breakout update slower (14.5 ms against 14.0, bf16, one core).
        return self.encode_layers(inputs, weights)[-1]

    def encode_layers(self, inputs: tf.Tensor, weights: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """``encode``, returning every layer's output (after its ReLU): the three convolutions'
        (NHWC) and the features, last."""
        x = self._channel_last(inputs)
        kernels, biases = list(weights[0::2]), list(weights[1::2])
        kernels[0] = kernels[0] * tf.cast(self.scale, kernels[0].dtype)
        outputs = []
        for kernel, bias, stride in zip(kernels, biases, self.STRIDES):
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, self.PADDING), bias))
            outputs.append(x)
        x = tf.reshape(x, [tf.shape(x)[0], -1])  # NHWC order, as keras.layers.Flatten
        outputs.append(tf.nn.relu(tf.nn.bias_add(tf.matmul(x, kernels[-1]), biases[-1])))
        return outputs

    def _channel_last(self, inputs: tf.Tensor) -> tf.Tensor:
        # NCHW -> NHWC for CPU kernels, cast and transposed in one XLA pass (_channel_last_in)
        return _CHANNEL_LAST[self.compute](inputs) if self.channel_first else tf.cast(inputs, self.compute)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.encode(inputs, self._cast_weights())

    def _cast_weights(self) -> list[tf.Tensor]:
        return [tf.cast(weight, self.compute) for weight in self.float32_weights()]

    def _acting_weights(self) -> list[tf.Tensor]:
        """What acting reads: the compute-dtype copies, or (float32, no copies) the weights."""
        return self._acting.copies or self._cast_weights()

    def acting_call(self, inputs: tf.Tensor) -> tf.Tensor:
        """``call`` on the compute-dtype copies: the same numbers, once they are refreshed."""
        return self.encode(inputs, self._acting_weights())

    def acting_layers(self, inputs: tf.Tensor) -> list[tf.Tensor]:
        """``encode_layers`` on what ``acting_call`` reads: what ``features_from_layers`` takes back."""
        return self.encode_layers(inputs, self._acting_weights())

    def features_from_layers(self, inputs: tf.Tensor, layers_out: Sequence[tf.Tensor]) -> tf.Tensor:
        """``call(inputs)``'s value and gradients without running the network forward again.

        ``layers_out`` must be ``acting_layers(inputs)`` computed on the current weights, with the
        compute-dtype copies still fresh (no change of the weights since: an on-policy rollout's
        acting calls, read by an update that comes before any other change), and in the same frame
        order as ``inputs``. The gradients reach the float32 weights through the ops TF's own
        gradients of ``encode_layers`` run (ReluGrad, BiasAddGrad, the convolutions' backprop), in
        the same dtype. The backward pass alone costs about two thirds of a forward-and-backward
        one (the first convolution's input gradient is never needed)."""
        weights = [tf.convert_to_tensor(weight) for weight in self.float32_weights()]
        conv_outputs, features = list(layers_out[:-1]), layers_out[-1]

        @tf.custom_gradient
        def cached_features(*float32_weights: tf.Tensor) -> Any:
            def gradient(upstream: tf.Tensor) -> list[tf.Tensor]:
                kernels = self._acting_weights()[0::2]  # the compute-dtype values encode ran on
                # The first layer's input is made again (one XLA pass) rather than kept from acting:
                # 84x84x4 frames in the compute dtype outweigh all the kept layer outputs together.
                layer_inputs = [self._channel_last(inputs), *conv_outputs]
                flat = tf.reshape(conv_outputs[-1], [tf.shape(conv_outputs[-1])[0], -1])
                grad = tf.raw_ops.ReluGrad(gradients=tf.cast(upstream, self.compute), features=features)
                # (kernel, bias) gradients from the last layer back; reversed into encode's order below
                reversed_grads = [tf.raw_ops.BiasAddGrad(out_backprop=grad), tf.matmul(flat, grad, transpose_a=True)]
                grad = tf.reshape(tf.matmul(grad, kernels[-1], transpose_b=True), tf.shape(conv_outputs[-1]))
                for index in reversed(range(len(self.STRIDES))):
                    strides = [1, self.STRIDES[index], self.STRIDES[index], 1]
                    grad = tf.raw_ops.ReluGrad(gradients=grad, features=conv_outputs[index])
                    kernel_grad = tf.raw_ops.Conv2DBackpropFilter(
                        input=layer_inputs[index], filter_sizes=tf.shape(kernels[index]), out_backprop=grad,
                        strides=strides, padding=self.PADDING)
                    if index == 0:  # encode scales the first kernel by 1/255 (uint8 frames)
                        kernel_grad = kernel_grad * tf.cast(self.scale, kernel_grad.dtype)
                    reversed_grads += [tf.raw_ops.BiasAddGrad(out_backprop=grad), kernel_grad]
                    if index > 0:
                        grad = tf.raw_ops.Conv2DBackpropInput(
                            input_sizes=tf.shape(layer_inputs[index]), filter=kernels[index], out_backprop=grad,
                            strides=strides, padding=self.PADDING)
                return [tf.cast(g, tf.float32) for g in reversed(reversed_grads)]

            return tf.identity(features), gradient

        return cached_features(*weights)

    def call_on_fresh_copies(self, inputs: tf.Tensor) -> tf.Tensor:
        """``call``'s numbers and gradients, read from the compute-dtype copies instead of casting
        the float32 weights again; the copies must be fresh (``refresh_acting_copies`` ran after the
        last change of the weights). The gradients reach the float32 weights as the cast's would.
        A DQN update follows a refresh: the cast of all 1.7M weights took ~0.5 ms of its ~15 ms."""
        if not self._acting.copies:
            return self(inputs)
        return self.encode(inputs, [_cast_held_by(copy, weight) for weight, copy in
                                    zip(self.float32_weights(), self._acting.copies)])

    def refresh_acting_copies(self) -> None:
        """Copy the weights into what ``acting_call`` reads; call it after every change of the
        weights (an update, a load, a target-network mix). Works eagerly and inside a graph."""
        for copy, weight in zip(self._acting.copies, self.float32_weights()):
            copy.assign(tf.cast(weight, copy.dtype))


@tf.custom_gradient
def _cast_held_by(copy: tf.Tensor, weight: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], Any]]:
    """``tf.cast(weight, copy.dtype)``, value and gradient, where ``copy`` already holds that value."""

    def gradient(upstream: tf.Tensor) -> tuple[None, tf.Tensor]:
        return None, tf.cast(upstream, weight.dtype)

    return tf.identity(copy), gradient


class _AttributeHolder:
    """A plain object: variables kept on it are invisible to Keras' tracking (and to saving)."""

    def __init__(self, **attributes: Any):
        self.__dict__.update(attributes)


class FlattenFeatures(keras.Model):
    """Vector (or one-hot Discrete) observations as a flat float32 vector."""

    def __init__(self, observation_space: spaces.Space, name: str | None = None):
        super().__init__(name=name)
        self.discrete_n = int(observation_space.n) if isinstance(observation_space, spaces.Discrete) else None

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.discrete_n is not None:
            return tf.one_hot(tf.cast(tf.reshape(inputs, [-1]), tf.int32), self.discrete_n)
        inputs = tf.cast(inputs, tf.float32)
        if inputs.shape.rank == 2:  # already flat: no shape ops in the update graphs
            return inputs
        return tf.reshape(inputs, [tf.shape(inputs)[0], -1])

    def acting_call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self(inputs)

    def call_on_fresh_copies(self, inputs: tf.Tensor) -> tf.Tensor:
        return self(inputs)

    def refresh_acting_copies(self) -> None:
        """Nothing to copy: flat features have no weights (see ``NatureCNN.refresh_acting_copies``)."""
        return None  # a body of only a docstring breaks AutoGraph's transform (it warns on every trace)


def make_features_extractor(observation_space: spaces.Space, compute_dtype: str = "float32") -> keras.Model:
    """NatureCNN for images (in ``compute_dtype``, see ``image_dtype_policy``), else flatten."""
    if is_image_space(observation_space):
        return NatureCNN(observation_space, dtype_policy=image_dtype_policy(compute_dtype))
    if isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        return FlattenFeatures(observation_space)
    raise UnsupportedSpaceError(f"no feature extractor for observation space {observation_space}")


def preprocess_numpy(observation_space: spaces.Space, obs: np.ndarray) -> np.ndarray:
    """NumPy twin of ``FlattenFeatures`` for the NumPy acting path."""
    if isinstance(observation_space, spaces.Discrete):
        # One-hot rows only: np.eye(n)[obs] would build an n x n matrix (terabytes for large n).
        index = np.asarray(obs, dtype=np.int64).reshape(-1)
        one_hot = np.zeros((len(index), int(observation_space.n)), dtype=np.float32)
        one_hot[np.arange(len(index)), index] = 1.0
        return one_hot
    return np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)


def build(model: keras.Model, observation_space: spaces.Space) -> Any:
    """Create a model's variables with one dummy batch; returns the model's output for it."""
    dtype = np.int64 if isinstance(observation_space, spaces.Discrete) else observation_space.dtype
    shape = (1,) if isinstance(observation_space, spaces.Discrete) else (1, *observation_space.shape)
    return model(tf.constant(np.zeros(shape, dtype=dtype)))
