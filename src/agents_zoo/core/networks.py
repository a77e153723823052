"""Networks shared by the agents: MLPs, the Nature-DQN CNN, and a NumPy mirror for acting.

Channel-first images (C, H, W) are accepted at the boundary and transposed to NHWC inside,
because TF's CPU convolutions only implement NHWC. Initialization follows SB3/CleanRL:
orthogonal weights with gain sqrt(2) in hidden layers and zero biases; heads pick their gain.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

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


class MLP(keras.Model):
    """Hidden layers with ``activation`` then a linear output layer (omitted if ``output_size`` is None)."""

    def __init__(self, hidden_sizes: Sequence[int], activation: str, output_size: int | None,
                 output_gain: float = 1.0, seed: int | None = None, name: str | None = None):
        super().__init__(name=name)
        self.activation_name = activation
        self.hidden = [dense(size, HIDDEN_GAIN, activation, seed=None if seed is None else seed + i)
                       for i, size in enumerate(hidden_sizes)]
        self.head = None if output_size is None else dense(output_size, output_gain, seed=None if seed is None else seed + 99)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return x if self.head is None else self.head(x)

    def numpy_layers(self) -> list[tuple[np.ndarray, np.ndarray, str | None]]:
        """(kernel, bias, activation) per layer, for ``numpy_mlp``."""
        stack = [(layer.kernel.numpy(), layer.bias.numpy(), self.activation_name) for layer in self.hidden]
        if self.head is not None:
            stack.append((self.head.kernel.numpy(), self.head.bias.numpy(), None))
        return stack


_NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3))),
    None: lambda x: x,
}


def numpy_mlp(stack: list[tuple[np.ndarray, np.ndarray, str | None]], x: np.ndarray) -> np.ndarray:
    """The same forward pass as ``MLP.call`` in NumPy: ~4 us instead of a ~200 us TF call."""
    for kernel, bias, activation in stack:
        x = _NUMPY_ACTIVATIONS[activation](x @ kernel + bias)
    return x


@functools.cache  # the hardware does not change: read /proc/cpuinfo once, not per network built
def hardware_has_bfloat16() -> bool:
    """Whether bf16 matrix math runs natively here: a GPU of compute capability >= 8.0 (Ampere),
    or an x86 CPU with AVX512_BF16 or AMX-BF16, which oneDNN uses for convolutions and matmuls.
    Elsewhere TF emulates bf16 and it is slower than float32."""
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
    return "mixed_bfloat16" if compute_dtype == "bfloat16" else "float32"


class NatureCNN(keras.Model):
    """Mnih et al. 2015 (Nature) encoder: uint8 frames in, a 512-feature vector out.

    Frames stay uint8 in storage and are scaled to [0, 1] here, so replay buffers hold bytes.
    ``dtype_policy`` "mixed_bfloat16" runs the convolutions and the feature layer in bf16 (see
    ``image_dtype_policy``); the 512 features come out in that dtype and the float32 heads cast
    them back.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 512, name: str | None = None,
                 dtype_policy: str = "float32"):
        super().__init__(name=name)
        if len(observation_space.shape) != 3:
            raise UnsupportedSpaceError(f"NatureCNN needs (C, H, W) or (H, W, C) images, got shape {observation_space.shape}")
        self.channel_first = image_is_channel_first(observation_space)
        self.scale = 1.0 / 255.0 if observation_space.dtype == np.uint8 else 1.0
        self.compute = tf.bfloat16 if dtype_policy == "mixed_bfloat16" else tf.float32
        self.convs = [
            layers.Conv2D(filters, kernel, strides=stride, activation="relu", kernel_initializer=orthogonal(HIDDEN_GAIN),
                          dtype=dtype_policy)
            for filters, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1))
        ]
        self.flatten = layers.Flatten(dtype=dtype_policy)
        self.features = dense(features_dim, HIDDEN_GAIN, "relu", dtype=dtype_policy)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        # uint8 pixels are exact in bf16 (8 significant bits hold 0..256), so one cast suffices.
        x = tf.cast(inputs, self.compute) * tf.cast(self.scale, self.compute)
        if self.channel_first:
            x = tf.transpose(x, [0, 2, 3, 1])  # NCHW -> NHWC for CPU kernels
        for conv in self.convs:
            x = conv(x)
        return self.features(self.flatten(x))


class FlattenFeatures(keras.Model):
    """Vector (or one-hot Discrete) observations as a flat float32 vector."""

    def __init__(self, observation_space: spaces.Space, name: str | None = None):
        super().__init__(name=name)
        self.discrete_n = int(observation_space.n) if isinstance(observation_space, spaces.Discrete) else None

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.discrete_n is not None:
            return tf.one_hot(tf.cast(tf.reshape(inputs, [-1]), tf.int32), self.discrete_n)
        return tf.reshape(tf.cast(inputs, tf.float32), [tf.shape(inputs)[0], -1])


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


def build(model: keras.Model, observation_space: spaces.Space) -> None:
    """Create a model's variables with one dummy batch."""
    dtype = np.int64 if isinstance(observation_space, spaces.Discrete) else observation_space.dtype
    shape = (1,) if isinstance(observation_space, spaces.Discrete) else (1, *observation_space.shape)
    model(tf.constant(np.zeros(shape, dtype=dtype)))
