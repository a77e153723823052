"""Nothing saved is ever lost: files of an earlier release load and act as they did when saved.

``tests/fixtures/previous-release/`` holds models saved by commit bc527c4 (variables stored BY
POSITION, ``policy/000``; generative weights ``weights/0000/<keras path>``), made once by
``tests/fixtures/make_previous_release_fixtures.py``, with a manifest of what each model
answered right after it was saved. Today's code saves variables BY NAME (a stable attribute path
per variable, ``core.saved_variables``); loading tells the layouts apart and maps the old
positions in their old order. The second half checks the named layout itself: a round trip,
names that do not depend on Keras' process-wide layer counters, and a renamed or missing
variable refused in one line that names it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import tensorflow as tf

import agents_zoo
from agents_zoo.core import saved_variables
from agents_zoo.core.serialization import ArchiveError, load_archive, save_archive

FIXTURES = Path(__file__).parent / "fixtures" / "previous-release"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {entry["file"]: entry for entry in MANIFEST["files"]}
AGENT_FILES = sorted(name for name, entry in ENTRIES.items() if entry["kind"].startswith("agent/"))
GENERATIVE_FILES = sorted(name for name, entry in ENTRIES.items() if entry["kind"].startswith("generative/"))


def recorded(record: dict) -> np.ndarray:
    return np.array(record["values"], dtype=record["dtype"]).reshape(record["shape"])


def assert_reproduces(actual, record: dict, what: str) -> None:
    """Exactly the recorded numbers: integers to the bit; floats to float32 round-off, which is what
    another CPU's kernels (oneDNN, BLAS) may change. A wrong or misplaced weight changes them by far more."""
    expected = recorded(record)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, recorded {expected.shape}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def test_the_fixtures_are_small_and_what_the_manifest_says():
    assert MANIFEST["variable_layout"] == "positions" and MANIFEST["commit"].startswith("bc527c4")
    total = 0
    for name, entry in ENTRIES.items():
        data = (FIXTURES / name).read_bytes()
        assert len(data) == entry["bytes"], name
        total += len(data)
    assert total + (FIXTURES / "manifest.json").stat().st_size < 2 * 2**20
    kinds = {entry["kind"] for entry in ENTRIES.values()}
    assert kinds >= {"agent/ppo", "agent/a2c", "agent/dqn", "agent/gail", "agent/qlearning", "agent/random",
                     "generative/gan", "generative/vae"}


def _network_outputs(agent, name: str, entry: dict, observations: np.ndarray):
    if name == "discriminator_logits":
        return [agent.discriminator_logits(observations, recorded(entry["discriminator_actions"]))]
    return tf.nest.flatten(getattr(agent, name)(tf.constant(observations)))


@pytest.mark.parametrize("name", AGENT_FILES)
def test_agent_of_the_previous_release_loads_and_acts_as_saved(name):
    entry = ENTRIES[name]
    archive = load_archive(FIXTURES / name)
    assert saved_variables.LAYOUT_KEY not in archive.metadata  # the old layout, detected as such
    agent = agents_zoo.load(FIXTURES / name)
    # every variable holds, bit for bit, the array saved at its position in the old order
    for prefix, obj in agent._trainables().items():
        variables = list(obj.variables)
        assert len(variables) == len([key for key in archive.arrays if key.startswith(prefix + "/")])
        for index, variable in enumerate(variables):
            np.testing.assert_array_equal(np.asarray(variable.numpy()), archive.arrays[f"{prefix}/{index:03d}"])
    observations = recorded(entry["observations"])
    actions = agent.predict(observations, deterministic=entry["deterministic"])[0]
    assert_reproduces(actions, entry["actions"], f"{name}: actions")
    for network, records in entry["outputs"].items():
        outputs = _network_outputs(agent, network, entry, observations)
        assert len(outputs) == len(records)
        for index, (output, record) in enumerate(zip(outputs, records)):
            assert_reproduces(output, record, f"{name}: {network}[{index}]")


# The fixtures were saved on gymnasium 1.x, whose CartPole-v1 declares infinite velocity bounds
# where 0.29 declares float32's maximum; attaching a 0.29 CartPole to them is refused as a
# different observation space, so the tests that resume training on the env need gymnasium 1.x.
needs_gymnasium_1 = pytest.mark.skipif(int(gymnasium.__version__.split(".")[0]) < 1,
                                       reason="fixtures saved with gymnasium 1.x CartPole bounds (inf, not float32 max)")


@needs_gymnasium_1
def test_dqn_of_the_previous_release_restores_its_replay_buffer_and_resumes():
    entry = ENTRIES["dqn_cartpole.zip"]
    agent = agents_zoo.load(FIXTURES / "dqn_cartpole.zip", env="CartPole-v1")
    assert len(agent.replay) == entry["replay_size"]
    sample = entry["replay_sample"]
    batch = agent.replay.sample(np.random.default_rng(sample["rng_seed"]), sample["batch_size"], beta=sample["beta"])
    assert list(batch._fields) == list(sample["fields"])
    for field, record in sample["fields"].items():
        assert_reproduces(getattr(batch, field), record, f"replay sample {field}")
    steps = agent.num_timesteps
    agent.learn(8, reset_num_timesteps=False)  # an old checkpoint resumes
    assert agent.num_timesteps == steps + 8


@needs_gymnasium_1
def test_ppo_of_the_previous_release_resumes_and_saves_by_name(tmp_path):
    agent = agents_zoo.load(FIXTURES / "ppo_cartpole.zip", env="CartPole-v1")
    agent.learn(32, reset_num_timesteps=False)
    archive = load_archive(agent.save(tmp_path / "resaved.zip"))
    assert archive.metadata[saved_variables.LAYOUT_KEY] == saved_variables.NAMES
    assert "policy/params" in archive.arrays and "policy/000" not in archive.arrays
    again = agents_zoo.load(tmp_path / "resaved.zip")
    observations = recorded(ENTRIES["ppo_cartpole.zip"]["observations"])
    np.testing.assert_array_equal(again.predict(observations, deterministic=True)[0],
                                  agent.predict(observations, deterministic=True)[0])


@pytest.mark.parametrize("name", GENERATIVE_FILES)
def test_generative_model_of_the_previous_release_loads_and_generates_as_saved(name):
    import generative

    entry = ENTRIES[name]
    archive = load_archive(FIXTURES / name)
    model = generative.load_model(FIXTURES / name)
    assert type(model).model_name == entry["kind"].split("/", 1)[1]
    saved = [archive.arrays[key] for key in sorted(archive.arrays)]
    assert len(saved) == len(model.weights)
    for variable, value in zip(model.weights, saved):
        np.testing.assert_array_equal(np.asarray(variable.numpy()), value)
    inputs = {key: recorded(record) for key, record in entry["inputs"].items()}
    calls = {"generate": lambda: model.generate(latent=inputs["latent"]),
             "discriminate": lambda: model.discriminate(inputs["images"]),
             "encode": lambda: model.encode(inputs["images"]),
             "decode": lambda: model.decode(inputs["latent"]),
             "reconstruct": lambda: model.reconstruct(inputs["images"])}
    for output, records in entry["outputs"].items():
        values = tf.nest.flatten(calls[output]())
        assert len(values) == len(records)
        for index, (value, record) in enumerate(zip(values, records)):
            assert_reproduces(value, record, f"{name}: {output}[{index}]")


def test_dqn_files_of_the_fused_adam_layout_still_load(tmp_path):
    """The files DQN._upgrade_saved_arrays exists for: every variable by position, the optimizer as
    [iterations, learning_rate, first moments..., second moments...], no layout in the metadata."""
    from agents_zoo.core.base import variables_to_arrays

    agent = _tiny("dqn").learn(48)
    archive = load_archive(agent.save(tmp_path / "new.zip"))
    arrays = {key: value for key, value in archive.arrays.items()
              if not key.startswith(("q_net/", "q_net_target/", "optimizer/"))}
    arrays.update(variables_to_arrays("q_net", agent.q_net))
    arrays.update(variables_to_arrays("q_net_target", agent.q_net_target))
    n = len(agent.q_net.trainable_variables)
    slots = [variable.numpy() for variable in agent.optimizer.variables]  # [m..., iterations, v...]
    fused = [slots[n], np.array(agent.config.learning_rate, np.float32), *slots[:n], *slots[n + 1:]]
    arrays.update({f"optimizer/{index:03d}": value for index, value in enumerate(fused)})
    metadata = {key: value for key, value in archive.metadata.items() if key != saved_variables.LAYOUT_KEY}
    old = save_archive(tmp_path / "old.zip", kind=archive.kind, config=archive.config, arrays=arrays, metadata=metadata)
    loaded = agents_zoo.load(old)
    for prefix in ("q_net", "q_net_target", "optimizer"):
        for mine, theirs in zip(getattr(agent, prefix).variables, getattr(loaded, prefix).variables):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


# ----------------------------------------------------------------------------- the named layout
def _tiny(name: str):
    settings = {
        "ppo": ("CartPole-v1", dict(n_steps=16, batch_size=16, n_epochs=1, policy_hidden_sizes=[8])),
        "a2c": ("CartPole-v1", dict(n_steps=5, policy_hidden_sizes=[8])),
        "dqn": ("CartPole-v1", dict(buffer_size=64, learning_starts=16, batch_size=8, policy_hidden_sizes=[8],
                                    dueling=True)),
    }
    env, config = settings[name]
    return agents_zoo.make(name, env, seed=0, **config)


@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn"])
def test_new_files_store_variables_by_name_and_round_trip(name, tmp_path):
    agent = _tiny(name).learn(48)
    archive = load_archive(agent.save(tmp_path / "new.zip"))
    assert archive.metadata[saved_variables.LAYOUT_KEY] == saved_variables.NAMES
    loaded = agents_zoo.load(tmp_path / "new.zip")
    for prefix, obj in agent._trainables().items():
        names = saved_variables.named_variables(obj)
        assert not any(part.isdigit() for part in [key.split("/")[0] for key in names]), names  # never positions
        assert not any(key.startswith("unnamed/") for key in names), names
        mine = dict(zip(names, obj.variables))
        theirs = saved_variables.named_variables(loaded._trainables()[prefix])
        assert list(theirs) == list(names)
        for key, variable in mine.items():
            np.testing.assert_array_equal(archive.arrays[f"{prefix}/{key}"], variable.numpy())
            np.testing.assert_array_equal(theirs[key].numpy(), variable.numpy())
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0],
                                  agent.predict(observations, deterministic=True)[0])


def test_names_are_attribute_paths_not_keras_counters():
    """Keras numbers auto-named layers per process ("dense_7"); the saved names never depend on
    how many models were made before, so a file from one process loads in another."""
    first, second = _tiny("dqn"), _tiny("dqn")
    assert [v.path for v in first.q_net.variables] != [v.path for v in second.q_net.variables]
    names = list(saved_variables.named_variables(first.q_net))
    assert names == list(saved_variables.named_variables(second.q_net))
    assert names == ["trunk/hidden/000/kernel", "trunk/hidden/000/bias", "advantage/kernel", "advantage/bias",
                     "value/kernel", "value/bias"]  # in the order of q_net.variables
    assert list(saved_variables.named_variables(first.optimizer)) == [
        *(f"first_moments/{i:03d}" for i in range(6)), "iterations", *(f"second_moments/{i:03d}" for i in range(6))]


def _rewrite(path, out, rename=None, drop=()):
    archive = load_archive(path)
    arrays = {(rename or {}).get(key, key): value for key, value in archive.arrays.items() if key not in drop}
    return save_archive(out, kind=archive.kind, config=archive.config, arrays=arrays, metadata=archive.metadata)


def test_a_renamed_variable_is_refused_in_one_line_naming_it(tmp_path):
    path = _tiny("dqn").save(tmp_path / "dqn.zip")
    bad = _rewrite(path, tmp_path / "renamed.zip", rename={"q_net/advantage/kernel": "q_net/advantage/weights"})
    with pytest.raises(ArchiveError) as error:
        agents_zoo.load(bad)
    message = str(error.value)
    assert "\n" not in message and str(bad) in message
    assert "missing q_net/advantage/kernel" in message and "unexpected q_net/advantage/weights" in message


def test_a_missing_variable_is_refused_in_one_line_naming_it(tmp_path):
    path = _tiny("ppo").save(tmp_path / "ppo.zip")
    bad = _rewrite(path, tmp_path / "missing.zip", drop=("optimizer/iterations",))
    with pytest.raises(ArchiveError, match=r"missing optimizer/iterations") as error:
        agents_zoo.load(bad)
    assert "\n" not in str(error.value) and "unexpected" not in str(error.value)


def test_a_variable_of_another_shape_is_refused_by_name(tmp_path):
    path = _tiny("dqn").save(tmp_path / "dqn.zip")
    archive = load_archive(path)
    archive.arrays["q_net/value/bias"] = np.zeros(3, np.float32)
    bad = save_archive(tmp_path / "shape.zip", kind=archive.kind, config=archive.config, arrays=archive.arrays,
                       metadata=archive.metadata)
    with pytest.raises(ArchiveError, match=r"q_net/value/bias has shape \(1,\) but the file holds \(3,\)"):
        agents_zoo.load(bad)


def test_generative_models_save_by_name_and_refuse_a_renamed_weight(tmp_path):
    from generative import common
    from generative.vae import VAE, VAEConfig

    common.seed_everything(0)
    vae = VAE(VAEConfig(image_shape=(3, 16, 16), architecture="cnn", latent_dim=2, filters=(4, 8), dense_units=8))
    images = np.random.default_rng(0).uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    path = vae.save(tmp_path / "vae.zip")
    archive = load_archive(path)
    assert archive.metadata[saved_variables.LAYOUT_KEY] == saved_variables.NAMES
    names = sorted(archive.arrays)
    assert all(name.startswith(("weights/encoder/", "weights/decoder/")) for name in names), names
    np.testing.assert_array_equal(np.asarray(VAE.load(path).reconstruct(images)), np.asarray(vae.reconstruct(images)))
    renamed = {names[0]: names[0] + "_old"}
    bad = _rewrite(path, tmp_path / "renamed.zip", rename=renamed)
    with pytest.raises(ArchiveError, match=rf"missing {names[0]}.*unexpected {names[0]}_old") as error:
        VAE.load(bad)
    assert "\n" not in str(error.value)


def test_fixture_members_are_those_the_release_wrote():
    """The re-packed image policy holds the same member bytes; only the zip compression differs."""
    with zipfile.ZipFile(FIXTURES / "ppo_nature_cnn.zip") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        assert "arrays/policy/000.npy" in archive.namelist()
