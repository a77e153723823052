"""Crafted files can neither pick code to import, nor exhaust memory, nor set arbitrary env attributes.

Every file here is built by the test. Memory is measured in a fresh Python process: its peak RSS
(VmHWM, reset before each load) minus its RSS just before the load, for each crafted file.
"""

from __future__ import annotations

import io
import json
import re
import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

import agents_zoo
from agents_zoo.core import env_state
from agents_zoo.core.base import BaseAgent
from agents_zoo.core.envs import FileEnvIdError, UnregisteredFileEnvIdError, check_file_env_id, make_vec_env
from agents_zoo.core.serialization import (ArchiveError, default_max_bytes, load_archive, parse_npy,
                                           save_archive)
from agents_zoo.demonstrations import DemonstrationError, load_demonstrations, load_expert

MARKER = "evil_module_was_imported"
EVIL_MODULE = f"import pathlib\npathlib.Path({MARKER!r}).write_text('ran')\n"
MiB = 2**20


# ----------------------------------------------------------------------------- crafting archives
def _rewrite(path, out, change_manifest=None, members=None):
    """Copy an archive, editing its manifest (a function of the dict) and/or replacing members."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in (members or {}):
                continue
            data = source.read(info.filename)
            if info.filename == "manifest.json" and change_manifest is not None:
                manifest = json.loads(data)
                change_manifest(manifest)
                data = json.dumps(manifest).encode()
            target.writestr(info.filename, data)
        for name, data in (members or {}).items():
            target.writestr(name, data)
    return out


def _set_config(**changes):
    def change(manifest):
        for key, value in changes.items():
            target = manifest["config"]
            *parents, last = key.split(".")
            for parent in parents:
                target = target[parent]
            target[last] = value
    return change


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _deflated_zeros(path, member, total_bytes, extra_members=()):
    """A zip whose member is an .npy header then ``total_bytes`` zero bytes, deflated (~1000x)."""
    itemsize = 4
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in extra_members:
            archive.writestr(name, data)
        with archive.open(member, "w") as handle:
            handle.write(_npy_header((total_bytes // itemsize,)))
            chunk = bytes(16 * MiB)
            for _ in range(total_bytes // len(chunk)):
                handle.write(chunk)
    return path


def _lie_about_size(path, out, member, declared):
    """Copy a zip, rewriting the central directory's uncompressed size of ``member``."""
    data = bytearray(open(path, "rb").read())
    name = member.encode()
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46: position + 46 + name_length]) == name:
            struct.pack_into("<I", data, position + 24, declared)
            open(out, "wb").write(bytes(data))
            return out
        position = data.find(b"PK\x01\x02", position + 4)
    raise AssertionError(f"{member} not in {path}")


def _manifest(kind, config, arrays=()):
    return json.dumps({"format": "agents-zoo-archive", "format_version": 1, "kind": kind, "config": config,
                       "metadata": {}, "arrays": list(arrays)}).encode()


@pytest.fixture(scope="module")
def ppo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppo") / "ppo.zip"
    agents_zoo.make("ppo", "CartPole-v1", seed=0, n_envs=1).save(path)
    return path


# ----------------------------------------------------------------------------- 1. env ids from files
def test_file_env_id_check():
    assert check_file_env_id("CartPole-v1", "model.zip") == "CartPole-v1"
    with pytest.raises(FileEnvIdError, match=r"'model.zip': env_id 'os:CartPole-v1' names a module to import.*"
                                             r"a file may not name a module to import"):
        check_file_env_id("os:CartPole-v1", "model.zip")
    with pytest.raises(UnregisteredFileEnvIdError, match="'evil_module/Env-v0' is not a registered environment id"):
        check_file_env_id("evil_module/Env-v0", "model.zip")
    for bad in (None, 3, "", ["CartPole-v1"]):
        with pytest.raises(FileEnvIdError, match="env_id must be a non-empty string"):
            check_file_env_id(bad, "model.zip")
    assert isinstance(FileEnvIdError("x"), ArchiveError) and isinstance(FileEnvIdError("x"), ValueError)


def test_file_env_id_imports_only_allow_listed_namespaces():
    pytest.importorskip("seals")
    assert check_file_env_id("seals/CartPole-v0", "expert.zip") == "seals/CartPole-v0"


@pytest.fixture
def evil_dir(tmp_path, monkeypatch):
    """A folder holding evil_module.py, importable (on sys.path) and the working directory."""
    (tmp_path / "evil_module.py").write_text(EVIL_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("evil_module", None)
    yield tmp_path
    assert "evil_module" not in sys.modules
    assert not (tmp_path / MARKER).exists(), "a file made the loader import a module of its choosing"


@pytest.mark.parametrize("trainer", ["sb3-ppo", "trpo"])
def test_expert_archive_cannot_name_a_module_to_import(evil_dir, trainer):
    path = save_archive(evil_dir / "expert.zip", kind=f"expert/{trainer}",
                        config={"env_id": "evil_module:Env-v0", "policy_kwargs": {}})
    with pytest.raises(ArchiveError, match=r"expert.zip': env_id 'evil_module:Env-v0' names a module to import"):
        load_expert(path, trainer)


def test_expert_archive_with_unregistered_namespace_is_refused(evil_dir):
    path = save_archive(evil_dir / "expert.zip", kind="expert/sb3-ppo",
                        config={"env_id": "evil_module/Env-v0", "policy_kwargs": {}})
    with pytest.raises(ArchiveError, match="'evil_module/Env-v0' is not a registered environment id"):
        load_expert(path, "sb3-ppo")


def test_expert_cli_rollout_refuses_module_env_id(evil_dir, capsys):
    from agents_zoo.cli import main

    save_archive(evil_dir / "expert.zip", kind="expert/sb3-ppo",
                 config={"env_id": "evil_module:Env-v0", "policy_kwargs": {}})
    status = main(["expert", "rollout", str(evil_dir / "expert.zip"), "CartPole-v1", "--trainer", "sb3-ppo",
                   "--episodes", "1", "--out", str(evil_dir / "demos.npz")])
    assert status == 2
    assert "names a module to import" in capsys.readouterr().err


def test_agent_archive_cannot_name_a_module_to_import(evil_dir, ppo_file):
    path = _rewrite(ppo_file, evil_dir / "model.zip", _set_config(env_id="evil_module:Env-v0"))
    with pytest.raises(ArchiveError, match="names a module to import"):
        BaseAgent.load(path)


def test_agent_archive_with_unregistered_env_id_loads_without_it(evil_dir, ppo_file):
    path = _rewrite(ppo_file, evil_dir / "model.zip", _set_config(env_id="evil_module/Env-v0"))
    with pytest.warns(UserWarning, match="'evil_module/Env-v0' is not a registered environment id"):
        agent = BaseAgent.load(path)
    assert agent.env_id is None  # predicts, but never makes an env from the file's id
    with pytest.raises(ValueError, match="does not know which env to evaluate on"):
        agent.evaluate(1)


def test_agent_archive_keeps_a_registered_env_id(ppo_file):
    assert BaseAgent.load(ppo_file).env_id == "CartPole-v1"


# ----------------------------------------------------------------------------- 2. memory
def test_default_limit_follows_the_file_size():
    assert default_max_bytes(1000) == 64 * MiB  # small files: the floor
    assert default_max_bytes(10 * MiB) == 640 * MiB  # compressed files: 64x their size
    assert default_max_bytes(100 * 2**30) == 102 * 2**30  # large stored checkpoints: own size + 2 GiB


def test_npy_header_must_match_its_bytes():
    header = _npy_header((2**40,), "<f8")  # 8 TiB declared over 16 bytes
    with pytest.raises(ArchiveError, match=r"declares shape \(1099511627776,\) of float64 \(8796093022208 bytes\) "
                                           r"but holds 16 bytes"):
        parse_npy(bytearray(header + bytes(16)), "array 'w'")
    good = io.BytesIO()
    np.save(good, np.arange(12, dtype=">i4").reshape(3, 4, order="F").T)
    np.testing.assert_array_equal(parse_npy(bytearray(good.getvalue()), "x"), np.arange(12).reshape(3, 4, order="F").T)


def test_archive_member_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "lies.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", _manifest("agent/random", {}, ["w"]))
        archive.writestr("arrays/w.npy", _npy_header((2**40,), "<f8") + bytes(16))
    with pytest.raises(ArchiveError, match=r"lies.zip': array 'w' declares shape \(1099511627776,\)"):
        load_archive(path)


def test_only_stored_or_deflated_members_are_read(tmp_path):
    path = tmp_path / "bz2.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("manifest.json", _manifest("agent/random", {}))
    with pytest.raises(ArchiveError, match="uses zip compression method 12; expected stored or deflate"):
        load_archive(path)


def test_spaces_declared_by_a_file_are_bounded(ppo_file, tmp_path):
    cases = {
        "discrete": ({"type": "Discrete", "n": 50_000_000, "start": 0}, "Discrete space has n=50000000; expected at most 1048576"),
        "box": ({"type": "Box", "shape": [100_000, 1000], "dtype": "float32", "low": -1.0, "high": 1.0},
                r"Box space has shape \[100000, 1000\] \(100000000 elements\); expected at most 4194304 elements"),
    }
    for name, (space, message) in cases.items():
        path = _rewrite(ppo_file, tmp_path / f"{name}.zip", _set_config(action_space=space))
        with pytest.raises(ArchiveError, match=message):
            BaseAgent.load(path)


def test_config_declaring_more_parameters_than_the_file_holds_is_refused(ppo_file, tmp_path):
    path = _rewrite(ppo_file, tmp_path / "wide.zip", _set_config(**{"config.policy_hidden_sizes": [8192, 8192]}))
    with pytest.raises(ArchiveError, match=r"wide.zip': its config declares networks with more parameters than the "
                                           r"file holds: weight .* of shape \([\d, ]+\) brings the count to \d+, but "
                                           r"the file holds \d+ array elements"):
        BaseAgent.load(path)


def test_real_files_still_load(tmp_path):
    """The limits refuse nothing the project writes (stored and compressed)."""
    dqn = agents_zoo.make("dqn", "CartPole-v1", seed=0, learning_starts=100, buffer_size=2000, train_freq=4).learn(300)
    dqn.save(tmp_path / "dqn.zip", include_replay_buffer=True)
    assert BaseAgent.load(tmp_path / "dqn.zip", env="CartPole-v1").num_timesteps == 300
    archive = load_archive(tmp_path / "dqn.zip")
    save_archive(tmp_path / "deflated.zip", kind=archive.kind, config=archive.config, arrays=archive.arrays,
                 compress=True)
    assert BaseAgent.load(tmp_path / "deflated.zip").num_timesteps == 300
    np.testing.assert_array_equal(load_archive(tmp_path / "deflated.zip").arrays["replay/observations"],
                                  archive.arrays["replay/observations"])


MEASURE_SCRIPT = textwrap.dedent("""
    import gc, json, os, re, sys, warnings
    warnings.simplefilter("ignore")
    cases, warm = json.loads(sys.argv[1]), json.loads(sys.argv[2])

    def status(key):
        return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024

    from agents_zoo.core.base import BaseAgent
    from agents_zoo.core.serialization import ArchiveError, load_archive
    from agents_zoo.demonstrations import load_demonstrations
    import generative
    loaders = {"agent": BaseAgent.load, "archive": load_archive, "demos": load_demonstrations,
               "generative": generative.load_model}
    for kind, path in warm:  # first loads initialize TensorFlow and Keras: not counted
        loaders[kind](path)
    results = {}
    for name, kind, path in cases:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak (VmHWM) to the current RSS
        before = status("VmRSS")
        try:
            loaders[kind](path)
            error, archive_error = None, False
        except Exception as exc:
            error, archive_error = f"{type(exc).__name__}: {exc}", isinstance(exc, ArchiveError)
        results[name] = {"error": error, "archive_error": archive_error, "growth": status("VmHWM") - before}
    print("RESULTS " + json.dumps(results))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures peak RSS through Linux /proc")
def test_small_crafted_files_are_refused_within_300_mib(ppo_file, tmp_path):
    from generative import VAE, VAEConfig

    vae_file = VAE(VAEConfig(image_shape=(1, 16, 16), architecture="mlp", hidden_units=8)).save(tmp_path / "vae.zip")
    demos_file = tmp_path / "demos.npz"
    np.savez_compressed(demos_file, obs=np.zeros((2, 3, 4), np.float32), acs=np.zeros((2, 3), np.int64),
                        rews=np.ones((2, 3), np.float32), ep_rets=np.full(2, 3.0, np.float32))
    half_gib = 512 * MiB
    bomb = _deflated_zeros(tmp_path / "bomb.zip", "arrays/w.npy", half_gib,
                           [("manifest.json", _manifest("agent/random", {}, ["w"]))])
    npz_bomb = _deflated_zeros(tmp_path / "bomb.npz", "obs.npy", half_gib)
    box = {"type": "Box", "shape": [2**22], "dtype": "float32", "low": -1.0, "high": 1.0}
    cases = {
        # name: (loader, file, what the error must say)
        "hidden_sizes_8192": ("agent", _rewrite(ppo_file, tmp_path / "wide.zip",
                                                _set_config(**{"config.policy_hidden_sizes": [8192, 8192]})),
                              "more parameters than the file holds"),
        "discrete_50M_actions": ("agent", _rewrite(ppo_file, tmp_path / "actions.zip", _set_config(
            action_space={"type": "Discrete", "n": 50_000_000, "start": 0})), "expected at most 1048576"),
        "huge_observation_box": ("agent", _rewrite(ppo_file, tmp_path / "box.zip", _set_config(
            observation_space={**box, "shape": [20_000, 20_000]})), "expected at most 4194304 elements"),
        "largest_allowed_box": ("agent", _rewrite(ppo_file, tmp_path / "box2.zip", _set_config(observation_space=box)),
                                "more parameters than the file holds"),
        "vae_hidden_units": ("generative", _rewrite(vae_file, tmp_path / "wide_vae.zip", _set_config(
            image_shape=[3, 64, 64], hidden_units=2**20)), "more parameters than the file holds"),
        "zip_bomb": ("archive", bomb, "more than the limit"),
        "lying_central_directory": ("archive", _lie_about_size(bomb, tmp_path / "liar.zip", "arrays/w.npy", 200),
                                    "corrupt or truncated"),
        "npz_bomb": ("demos", npz_bomb, "more than the limit"),
        "npy_header_8_tib": ("archive", _rewrite(ppo_file, tmp_path / "header.zip", members={
            "arrays/policy/params.npy": _npy_header((2**40,), "<f8") + bytes(64)}), "declares shape (1099511627776,)"),
    }
    assert os.path.getsize(bomb) < MiB and os.path.getsize(npz_bomb) < MiB  # ~1000x
    assert os.path.getsize(tmp_path / "wide.zip") < 200_000
    warm = [["agent", str(ppo_file)], ["generative", str(vae_file)], ["demos", str(demos_file)]]
    out = subprocess.run([sys.executable, "-c", MEASURE_SCRIPT,
                          json.dumps([[name, kind, str(path)] for name, (kind, path, _) in cases.items()]),
                          json.dumps(warm)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, out.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULTS "):])
    print({name: f"{result['growth'] / MiB:.0f} MiB" for name, result in results.items()})  # shown with -s
    for name, (_, path, message) in cases.items():
        result = results[name]
        assert result["archive_error"], f"{name}: {result['error']}"
        assert str(path) in result["error"] and message in result["error"], f"{name}: {result['error']}"
        assert result["growth"] < 300 * MiB, f"{name}: peak RSS grew {result['growth'] / MiB:.0f} MiB while refusing"


# ----------------------------------------------------------------------------- demonstrations
def test_npz_bomb_is_refused(tmp_path):
    path = _deflated_zeros(tmp_path / "bomb.npz", "obs.npy", 128 * MiB)
    with pytest.raises(DemonstrationError, match=r"more than the limit (of )?67108864"):
        load_demonstrations(path)
    with pytest.raises(ArchiveError):  # a demonstration file error is an ArchiveError too
        load_demonstrations(path)


def test_npz_member_with_lying_header_is_refused(tmp_path):
    path = tmp_path / "lies.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("obs.npy", _npy_header((10**12,)) + bytes(8))
    with pytest.raises(DemonstrationError, match=r"demonstration key 'obs' declares shape \(1000000000000,\)"):
        load_demonstrations(path)


# ----------------------------------------------------------------------------- 3. env state
def _stepped_env(seed=3):
    env = make_vec_env("CartPole-v1", 2, seed=seed)
    for _ in range(5):
        env.step(np.array([0, 1]))
    return env


def _tampered(description, layer_class, **fields):
    description = json.loads(json.dumps(description))
    for layer in description["layers"]:
        if layer["class"] == layer_class:
            layer["fields"].update(fields)
            break
    else:
        raise AssertionError(layer_class)
    return description


def test_episode_state_fields_are_those_assigned_outside_init():
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    from gymnasium.wrappers import TimeLimit

    cartpole = env_state._episode_state_fields(CartPoleEnv)
    assert {"state", "steps_beyond_terminated", "_np_random"} <= cartpole
    assert not {"gravity", "masspole", "force_mag", "tau", "x_threshold", "kinematics_integrator"} & cartpole
    time_limit = env_state._episode_state_fields(TimeLimit)
    assert "_elapsed_steps" in time_limit and "_max_episode_steps" not in time_limit


@pytest.mark.parametrize("layer_class, fields, message", [
    ("CartPoleEnv", {"render_mode": {"value": "human"}}, "render_mode is not a field the env's snapshot holds"),
    ("CartPoleEnv", {"__dict__": {"value": {}}}, "__dict__ is not a field the env's snapshot holds"),
    ("CartPoleEnv", {"spec": {"value": None}}, "spec is not a field"),
    ("CartPoleEnv", {"brand_new": {"value": 1}}, "brand_new is not a field"),
    ("CartPoleEnv", {"gravity": {"value": 98.0}}, "gravity is a constant of the env"),
    ("TimeLimit", {"_max_episode_steps": {"value": 10**9}}, "_max_episode_steps is a constant of the env"),
    ("CartPoleEnv", {"state": {"value": None}}, "holds a value"),
    ("CartPoleEnv", {"steps_beyond_terminated": {"value": "many"}}, "holds a value"),
    ("TimeLimit", {"_elapsed_steps": {"value": None}}, "holds a value"),
    ("TimeLimit", {"_elapsed_steps": {"value": "7"}}, "holds a value"),
    ("TimeLimit", {"_elapsed_steps": {"value": [1, 2]}}, "expected a plain value"),
    ("CartPoleEnv", {"_np_random": {"generator": {}, "bit_generator": "MT19937"}}, "holds a generator"),
    ("CartPoleEnv", {"_np_random": {"generator": {"state": 1}, "bit_generator": "PCG64"}}, "invalid PCG64 state"),
    ("CartPoleEnv", {"state": {"array": "env_state/wrong"}}, "does not hold"),
    ("CartPoleEnv", {"state": {"eval": "1"}}, "unreadable"),
])
def test_restore_refuses_what_snapshot_would_not_save_and_changes_nothing(layer_class, fields, message):
    description, arrays = env_state.snapshot(_stepped_env())
    target = _stepped_env(seed=99)
    before, before_arrays = env_state.snapshot(target)
    with pytest.raises(ValueError, match=message):
        env_state.restore(target, _tampered(description, layer_class, **fields), arrays)
    after, after_arrays = env_state.snapshot(target)
    assert after == before and after_arrays.keys() == before_arrays.keys()
    for key in before_arrays:
        np.testing.assert_array_equal(after_arrays[key], before_arrays[key])
    assert target.envs[0].unwrapped.render_mode is None and target.envs[0].unwrapped.gravity == 9.8


def test_restore_refuses_arrays_of_another_shape():
    description, arrays = env_state.snapshot(_stepped_env())
    # The vector env's last observations: an array on every gymnasium (CartPole's own state is a
    # tuple after a step on gymnasium 0.29 and an array on 1.x; the field's name changed in 1.x).
    fields = description["layers"][0]["fields"]
    key = fields["observations" if "observations" in fields else "_observations"]["array"]
    expected = re.escape(str(arrays[key].shape))
    with pytest.raises(ValueError, match=rf"is a float64 array of shape \(7,\); expected float\d+ of shape {expected}"):
        env_state.restore(_stepped_env(99), description, {**arrays, key: np.zeros(7)})


def test_resume_from_tampered_env_state_ignores_it_without_crashing(tmp_path):
    agent = agents_zoo.make("ppo", "CartPole-v1", seed=0, n_envs=2, n_steps=32, batch_size=32, n_epochs=1)
    agent.learn(64)
    agent.save(tmp_path / "ck.zip")
    assert isinstance(load_archive(tmp_path / "ck.zip").config["env_state"], dict)

    def tamper(manifest):
        layers = manifest["config"]["env_state"]["layers"]
        cartpole = [layer for layer in layers if layer["class"] == "CartPoleEnv"][0]
        cartpole["fields"].update({"render_mode": {"value": "human"}, "gravity": {"value": -50.0},
                                   "__dict__": {"value": {}}})

    _rewrite(tmp_path / "ck.zip", tmp_path / "tampered.zip", tamper)
    with pytest.warns(UserWarning, match="could not restore the envs' episodes"):
        resumed = type(agent).load(tmp_path / "tampered.zip", env="CartPole-v1")
    for env in resumed.env.envs:
        assert env.unwrapped.render_mode is None and env.unwrapped.gravity == 9.8
    resumed.learn(64, reset_num_timesteps=False)  # fresh episodes, no window, no crash
    assert resumed.num_timesteps == 128
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        type(agent).load(tmp_path / "ck.zip", env="CartPole-v1")
    assert not [w for w in caught if "could not restore" in str(w.message)]  # the untampered one restores


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "MountainCar-v0", "seals/CartPole-v0"])
def test_restore_accepts_every_real_episode_state(env_id):
    """The allow-list refuses nothing a real episode leaves behind (Pendulum's last action is
    None after reset and a number after a step; seals' CartPole turns its state array into a list)."""
    if env_id.startswith("seals/"):
        pytest.importorskip("seals")
        check_file_env_id(env_id, "test")  # registers the seals ids
    source = make_vec_env(env_id, 2, seed=1)
    for _ in range(7):
        source.step(np.stack([source.single_action_space.sample() for _ in range(2)]))
    description, arrays = env_state.snapshot(source)
    target = make_vec_env(env_id, 2, seed=2)
    env_state.restore(target, description, arrays)
    actions = np.stack([source.single_action_space.sample() for _ in range(2)])
    for _ in range(20):
        expected, got = source.step(actions), target.step(actions)
        np.testing.assert_array_equal(expected[0], got[0])
        np.testing.assert_array_equal(expected[1], got[1])
