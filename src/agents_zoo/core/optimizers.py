"""Optimizers with PyTorch's update formulas, as one fused TF kernel per variable.

SB3's hyperparameters (and RL-Zoo's tuned ones) were tuned against ``torch.optim``: Adam's
epsilon is added to the bias-corrected ``sqrt(v_hat)`` there, to ``sqrt(v)`` in Keras. Every
agent here (PPO, A2C, DQN, the GAIL discriminator) uses :class:`TorchStyleOptimizer`; PPO, A2C
and GAIL with torch's epsilon placement, DQN with Keras' (``torch_epsilon=False``, the rule its
published benchmark ran with; the two differ by a factor ``sqrt(1 - beta_2^t)`` on an epsilon of
1e-8). Its slots are plain ``tf.Variable`` objects, so ``apply`` runs inside a compiled
``tf.while_loop`` and is saved like any other trainable.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class TorchStyleOptimizer(tf.Module):
    """Adam or RMSprop with PyTorch's formulas (the ones SB3's hyperparameters were tuned for).

    Adam (Kingma & Ba 2015, Alg. 1): p -= lr * m_hat / (sqrt(v_hat) + eps); with
    ``torch_epsilon=False``, Keras' p -= lr * m_hat / (sqrt(v) + eps) instead.
    RMSprop (torch, non-centered): v = alpha v + (1 - alpha) g^2; p -= lr * g / (sqrt(v) + eps).
    With ``rms_prop_tf_like=True``, TF 1's RMSprop, the one the A2C Atari results of OpenAI
    Baselines, Stable Baselines 2 and RL-Zoo (SB3's ``RMSpropTFLike``) were obtained with:
    v starts at 1 instead of 0 and p -= lr * g / sqrt(v + eps), epsilon inside the root. The
    first steps then move by ~lr * g instead of ~10 * lr * sign(g) (torch's v starts at 0). SB3's
    A2C documentation recommends RMSpropTFLike when training is unstable or to match Stable
    Baselines 2's A2C.
    Plain ``tf.Variable`` slots, so ``apply`` runs inside a compiled ``tf.while_loop``.
    """

    COMPILED_RMSPROP_MIN_PARAMETERS = 100_000
    """RMSprop runs as one XLA pass per variable from this many parameters on (``_rmsprop``)."""

    def __init__(self, variables: Sequence[tf.Variable], kind: str, epsilon: float,
                 rms_alpha: float = 0.99, betas: tuple[float, float] = (0.9, 0.999), torch_epsilon: bool = True,
                 rms_prop_tf_like: bool = False):
        super().__init__(name=f"{kind}_optimizer")
        if kind not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer kind must be 'adam' or 'rmsprop', got {kind!r}")
        if rms_prop_tf_like and kind != "rmsprop":
            raise ValueError(f"rms_prop_tf_like is a form of RMSprop; the optimizer kind is {kind!r}")
        self.kind, self.epsilon, self.rms_alpha, self.betas = kind, epsilon, rms_alpha, betas
        self.torch_epsilon = torch_epsilon
        self.rms_prop_tf_like = rms_prop_tf_like
        self.iterations = tf.Variable(0.0, trainable=False, name="iterations")
        start = tf.ones_like if rms_prop_tf_like else tf.zeros_like
        self.second_moments = [tf.Variable(start(v), trainable=False) for v in variables]
        self.first_moments = ([tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
                              if kind == "adam" else [])
        self.compiled_rmsprop = kind == "rmsprop" and sum(v.shape.num_elements() for v in self.second_moments) >= \
            self.COMPILED_RMSPROP_MIN_PARAMETERS

    def apply(self, gradients: Sequence[tf.Tensor], variables: Sequence[tf.Variable], learning_rate: tf.Tensor) -> None:
        self.iterations.assign_add(1.0)
        if self.compiled_rmsprop:
            # Keras variables hand the compiled function their tf.Variable (its arguments must be TF's)
            self._compiled_rmsprop(list(gradients), [v if isinstance(v, tf.Variable) else v.value for v in variables],
                                   learning_rate)
            return
        if self.kind == "rmsprop":
            self._rmsprop(gradients, variables, learning_rate)
            return
        # Torch's Adam, lr * m_hat / (sqrt(v_hat) + eps), equals TF's fused kernel
        # lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps_hat) with eps_hat = eps * sqrt(1 - b2^t):
        # one kernel per variable instead of eight ops. Unlike RMSprop, Adam stays on it: one XLA pass
        # doing the clip's scaling and Adam together made a DQN Breakout update slower (bf16, one
        # core: 15.5 ms against 14.2).
        beta1, beta2 = self.betas
        beta1_power = tf.pow(beta1, self.iterations)
        beta2_power = tf.pow(beta2, self.iterations)
        epsilon_hat = self.epsilon * tf.sqrt(1.0 - beta2_power) if self.torch_epsilon else self.epsilon
        for g, v, m, s in zip(gradients, variables, self.first_moments, self.second_moments):
            tf.raw_ops.ResourceApplyAdam(var=v.handle, m=m.handle, v=s.handle, beta1_power=beta1_power,
                                         beta2_power=beta2_power, lr=learning_rate, beta1=beta1, beta2=beta2,
                                         epsilon=epsilon_hat, grad=g)

    def _rmsprop(self, gradients: Sequence[tf.Tensor], variables: Sequence[tf.Variable], learning_rate: tf.Tensor) -> None:
        for g, v, square in zip(gradients, variables, self.second_moments):
            square.assign(self.rms_alpha * square + (1.0 - self.rms_alpha) * tf.square(g))
            denominator = tf.sqrt(square + self.epsilon) if self.rms_prop_tf_like else tf.sqrt(square) + self.epsilon
            v.assign_sub(learning_rate * g / denominator)

    @tf.function(jit_compile=True)
    def _compiled_rmsprop(self, gradients: list[tf.Tensor], variables: list[tf.Variable],
                          learning_rate: tf.Tensor) -> None:
        """``_rmsprop`` compiled by XLA into one pass over each variable: a compiled island
        inside the update graph, as the frame transpose of ``core.networks``.

        TF has no fused kernel for torch's RMSprop (``ResourceApplyRMSProp`` puts epsilon inside
        the square root), and as separate TF kernels its elementwise passes took ~6 ms of a
        ~29 ms A2C update of the Nature CNN (1.7M parameters, one core), ~3.5 ms compiled. On a
        CartPole MLP (~10k parameters) the compiled call cost ~8% more per update than the
        kernels: hence ``COMPILED_RMSPROP_MIN_PARAMETERS``.
        """
        self._rmsprop(gradients, variables, learning_rate)


def clipped_step(optimizer: TorchStyleOptimizer, tape: tf.GradientTape, loss: tf.Tensor,
                 variables: Sequence[tf.Variable], learning_rate: tf.Tensor, max_grad_norm: float) -> None:
    """One optimizer step on gradients clipped to a global norm (Pascanu et al. 2013)."""
    gradients = tape.gradient(loss, variables)
    gradients, _ = tf.clip_by_global_norm(gradients, max_grad_norm)
    optimizer.apply(gradients, variables, learning_rate)
