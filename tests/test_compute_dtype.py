"""The ``compute_dtype`` setting: bf16 image networks keep float32 weights, heads and losses."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
from gymnasium import spaces

import agents_zoo
from agents_zoo.core import networks
from agents_zoo.core.networks import NatureCNN, build, hardware_has_bfloat16, image_dtype_policy
from wrappers.fake_envs import RandomImageEnv

FRAMES = spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_bfloat16_cnn_matches_float32_with_the_same_weights():
    full, mixed = NatureCNN(FRAMES), NatureCNN(FRAMES, dtype_policy="mixed_bfloat16")
    build(full, FRAMES)
    build(mixed, FRAMES)
    mixed.set_weights(full.get_weights())
    assert all(v.dtype == tf.float32 for v in mixed.variables)  # float32 master weights
    frames = np.random.default_rng(0).integers(0, 256, (16, *FRAMES.shape), dtype=np.uint8)
    exact = full(tf.constant(frames)).numpy()
    approximate = mixed(tf.constant(frames))
    assert approximate.dtype == tf.bfloat16
    # bf16 keeps 8 significant bits: relative error ~2**-8 per op, a few ops deep
    scale = np.abs(exact).max()
    np.testing.assert_allclose(tf.cast(approximate, tf.float32).numpy(), exact, atol=0.03 * scale)


def test_compute_dtype_choices():
    assert image_dtype_policy("float32") == "float32"
    assert image_dtype_policy("bfloat16") == "mixed_bfloat16"
    assert image_dtype_policy("auto") in ("float32", "mixed_bfloat16")
    with pytest.raises(ValueError, match=r"compute_dtype must be one of 'float32', 'bfloat16', 'auto', got 'fp16'"):
        image_dtype_policy("fp16")
    with pytest.raises(ValueError, match=r"compute_dtype must be one of 'float32', 'bfloat16', 'auto', got 'float16'"):
        agents_zoo.make("ppo", "CartPole-v1", compute_dtype="float16")


def test_bfloat16_asked_for_without_native_support_warns_of_the_cost(monkeypatch):
    """Emulated bf16 ran a Nature-CNN train step ~10x slower than float32 on an AVX2 CPU: asking
    for it there is almost surely a mistake, and "auto" would have picked float32."""
    monkeypatch.setattr(networks, "hardware_has_bfloat16", lambda: False)
    with pytest.warns(RuntimeWarning, match=r"compute_dtype='bfloat16' on hardware without native bf16 .*"
                                            r"about 10x slower than float32; 'auto' picks float32 here"):
        assert image_dtype_policy("bfloat16") == "mixed_bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_dtype_policy("auto") == "float32"
        monkeypatch.setattr(networks, "hardware_has_bfloat16", lambda: True)
        assert image_dtype_policy("bfloat16") == "mixed_bfloat16"


def _onednn_after(code: str, **environment: str) -> str:
    """TF_ENABLE_ONEDNN_OPTS, then whether TF runs oneDNN's kernels, in a fresh interpreter after ``code``."""
    base = {name: value for name, value in os.environ.items() if name != "TF_ENABLE_ONEDNN_OPTS"}
    probe = (f"{code}\nimport os\nfrom tensorflow.python.util import _pywrap_util_port\n"
             "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), _pywrap_util_port.IsMklEnabled())")
    completed = subprocess.run([sys.executable, "-c", probe], env={**base, **environment}, capture_output=True,
                               text=True, check=True)
    return " ".join(completed.stdout.split()[-2:])


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN's default is set on x86 only")
def test_importing_the_package_turns_on_onednn_kernels_unless_told_otherwise():
    """TF runs Eigen's CPU kernels on x86 CPUs without AVX512_VNNI/BF16/AMX unless asked for oneDNN's,
    which ran our Atari agents 1.24-1.40x faster there (benchmarks/results/onednn)."""
    assert _onednn_after("import agents_zoo\nimport tensorflow") == "1 True"
    assert _onednn_after("import generative\ngenerative.CycleGAN") == "1 True"  # its modules load keras first
    assert _onednn_after("import agents_zoo\nimport tensorflow", TF_ENABLE_ONEDNN_OPTS="0") == "0 False"
    # TF read the variable when it loaded: setting it afterwards would only misreport what runs
    assert _onednn_after("import tensorflow\nimport agents_zoo").startswith("None")


def test_image_networks_default_to_bfloat16_where_the_hardware_has_it():
    """The default, "auto", was chosen by measurement (benchmarks/results/atari, atari-learning):
    bf16 convolutions ran PPO, DQN and A2C faster on this project's CPU and learned Pong and Breakout."""
    agent = agents_zoo.make("ppo", lambda: RandomImageEnv(shape=FRAMES.shape), seed=0, n_steps=8, batch_size=8)
    assert agent.config.compute_dtype == "auto"
    assert agent.policy.features.compute == (tf.bfloat16 if hardware_has_bfloat16() else tf.float32)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_bfloat16_agents_train_save_and_load_on_frames(algo, tmp_path):
    kwargs = {"ppo": dict(n_envs=2, n_steps=16, batch_size=16, n_epochs=1),
              "a2c": dict(n_envs=2, n_steps=5),
              "dqn": dict(buffer_size=200, learning_starts=32, batch_size=8, train_freq=4, deduplicate_frames=False)}[algo]
    agent = agents_zoo.make(algo, lambda: RandomImageEnv(shape=FRAMES.shape, episode_length=20), seed=0,
                            compute_dtype="bfloat16", **kwargs)
    agent.learn(64)
    network = agent.q_net if algo == "dqn" else agent.policy
    assert all(v.dtype == tf.float32 for v in network.variables)
    observation = RandomImageEnv(shape=FRAMES.shape).reset(seed=0)[0]
    action, _ = agent.predict(observation, deterministic=True)
    agent.save(tmp_path / "agent.zip")
    loaded = agents_zoo.load(tmp_path / "agent.zip")
    assert loaded.config.compute_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.predict(observation, deterministic=True)[0], action)


@pytest.mark.parametrize("compute_dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_acting_reads_the_same_weights_as_training(algo, compute_dtype, tmp_path):
    """Image networks act on compute-dtype copies of their weights (NatureCNN.acting_call): after
    building, every update, every target-network update and a load they give call's numbers exactly."""
    kwargs = {"ppo": dict(n_envs=2, n_steps=16, batch_size=16, n_epochs=1),
              "a2c": dict(n_envs=2, n_steps=5),
              "dqn": dict(buffer_size=200, learning_starts=16, batch_size=8, train_freq=4, target_update_interval=8,
                          deduplicate_frames=False)}[algo]
    make_env = lambda: RandomImageEnv(shape=FRAMES.shape, episode_length=20)  # noqa: E731
    frames = tf.constant(np.random.default_rng(1).integers(0, 256, (3, *FRAMES.shape), dtype=np.uint8))

    def assert_acting_matches(agent):
        if algo == "dqn":
            for network in (agent.q_net, agent.q_net_target):
                np.testing.assert_array_equal(network.acting_q_values(frames).numpy(), network(frames).numpy())
        else:
            acting, training = agent.policy.acting_heads(frames), agent.policy.heads(frames)
            for a, b in zip(acting[:2], training[:2]):
                np.testing.assert_array_equal(a.numpy(), b.numpy())

    agent = agents_zoo.make(algo, make_env, seed=0, compute_dtype=compute_dtype, **kwargs)
    assert_acting_matches(agent)
    agent.learn(64)
    assert_acting_matches(agent)
    if algo == "dqn":  # the last target update happened during learn: the copies followed it
        assert agent._n_calls >= 2 * kwargs["target_update_interval"]
    agent.save(tmp_path / "agent.zip")
    assert_acting_matches(agents_zoo.load(tmp_path / "agent.zip", env=make_env))


def test_float32_nature_cnn_is_sb3s_with_the_same_weights():
    """The encoder is SB3's NatureCNN (conv 8x8/4, 4x4/2, 3x3/1, ReLU after each and after the
    512-unit layer, uint8 pixels divided by 255): with SB3's weights, transposed to Keras'
    layouts and the flattening reordered from CHW to HWC, the 512 features agree."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.preprocessing import preprocess_obs
    from stable_baselines3.common.torch_layers import NatureCNN as SB3NatureCNN

    torch.manual_seed(0)
    reference = SB3NatureCNN(FRAMES, features_dim=512)
    ours = NatureCNN(FRAMES)
    build(ours, FRAMES)
    convs = [layer for layer in reference.cnn if isinstance(layer, torch.nn.Conv2d)]
    linear = reference.linear[0]
    height, width = 7, 7  # 84 -> 20 -> 9 -> 7
    channels = convs[-1].out_channels
    # torch flattens (C, H, W); the feature kernel's rows are in our (H, W, C) order.
    chw_rows = np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)
    pieces = [piece for conv in convs for piece in (conv.weight.detach().numpy().transpose(2, 3, 1, 0),
                                                    conv.bias.detach().numpy())]
    pieces += [linear.weight.detach().numpy().T[chw_rows], linear.bias.detach().numpy()]
    for variable, piece in zip(ours.float32_weights(), pieces, strict=True):
        variable.assign(piece)
    frames = np.random.default_rng(0).integers(0, 256, (8, *FRAMES.shape), dtype=np.uint8)
    with torch.no_grad():
        expected = reference(preprocess_obs(torch.as_tensor(frames), FRAMES)).numpy()
    np.testing.assert_allclose(ours(tf.constant(frames)).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_image_networks_refresh_their_copies_without_handing_back_a_flat_vector(algo):
    """acting_weights() flattens the weights only for the NumPy acting path of vector
    observations: an image network acts in TF on its refreshed copies, and its updates hand
    back an empty vector instead of concatenating ~1.7M weights that nothing reads."""
    agent = agents_zoo.make(algo, lambda: RandomImageEnv(shape=FRAMES.shape), seed=0, compute_dtype="bfloat16")
    network = agent.q_net if algo == "dqn" else agent.policy
    features = network.features
    weight = features.float32_weights()[0]
    weight.assign(weight + 1.0)
    assert network.acting_weights().shape == (0,)
    np.testing.assert_array_equal(features._acting.copies[0].numpy(), tf.cast(weight, tf.bfloat16).numpy())


@pytest.mark.parametrize("compute_dtype", ["bfloat16", "float32"])
def test_training_on_fresh_copies_gives_calls_values_and_gradients(compute_dtype):
    """A DQN update reads the acting copies that the previous update refreshed instead of casting
    the weights again (NatureCNN.call_on_fresh_copies): the same Q-values and the same gradients
    on every float32 weight, bit for bit."""
    from agents_zoo.core.policies import QNetwork

    network = QNetwork(FRAMES, 4, (), "relu", dueling=True, compute_dtype=compute_dtype)
    network.acting_weights()
    frames = tf.constant(np.random.default_rng(2).integers(0, 256, (5, *FRAMES.shape), dtype=np.uint8))

    @tf.function
    def values_and_gradients(read_copies: bool):
        with tf.GradientTape() as tape:
            q_values = network.call_on_fresh_copies(frames) if read_copies else network(frames)
            loss = tf.reduce_sum(tf.square(q_values - 1.0))
        return q_values, tape.gradient(loss, network.trainable_variables)

    (cast_values, cast_gradients), (copy_values, copy_gradients) = (values_and_gradients(flag) for flag in (False, True))
    np.testing.assert_array_equal(copy_values.numpy(), cast_values.numpy())
    assert len(copy_gradients) == len(network.trainable_variables) == 12
    for ours, reference in zip(copy_gradients, cast_gradients, strict=True):
        assert ours.dtype == tf.float32
        np.testing.assert_array_equal(ours.numpy(), reference.numpy())
