"""Crafted or odd files through the CLI: one line on stderr naming the file, exit status 2, no traceback.

Each file is handed to ``agents-zoo evaluate`` (a model) or ``agents-zoo expert inspect`` (a
demonstrations ``.npz``) in-process through ``agents_zoo.cli.main``: unsupported compression,
the encrypted and patched-data flags, a deeply nested manifest, ``Infinity``/NaN/huge numbers
in the saved config, TensorFlow running out of memory while the model is built, headers
declaring terabytes, and truncated ``.npy`` data (never reported as needing pickle).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import agents_zoo
from agents_zoo.cli import main
from agents_zoo.core.config import AgentConfig

TiB = 2**40


def _error_line(capsys, command: str, path) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith(f"agents-zoo {command}: error:"), line
    assert str(path) in line and "Traceback" not in captured.err, line
    return line


def _members(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _write(path, members, compression=zipfile.ZIP_STORED, only=None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data, compress_type=compression if only in (None, name) else zipfile.ZIP_STORED)
    return path


def _with_manifest_text(source, out, edit):
    members = _members(source)
    members = [(name, edit(data.decode()).encode() if name == "manifest.json" else data) for name, data in members]
    return _write(out, members)


def _with_config(source, out, **fields):
    """Set config fields (dotted keys) to raw JSON text, so Infinity and 2**70 go in as written."""
    def edit(text):
        manifest = json.loads(text)
        for index, key in enumerate(fields):
            target = manifest["config"]
            *parents, last = key.split(".")
            for parent in parents:
                target = target[parent]
            target[last] = f"@@{index}@@"
        text = json.dumps(manifest)
        for index, raw in enumerate(fields.values()):
            text = text.replace(f'"@@{index}@@"', raw)
        return text
    return _with_manifest_text(source, out, edit)


def _set_flags(path, member, flags):
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = data.find(signature)
        while start >= 0:
            if data[start + name_offset: start + name_offset + len(name)] == name:
                data[start + flag_offset: start + flag_offset + 2] = flags.to_bytes(2, "little")
            start = data.find(signature, start + 4)
    path.write_bytes(bytes(data))
    return path


def _npy_header(shape, descr="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "ppo.zip"
    agents_zoo.make("ppo", "CartPole-v1", seed=0, n_envs=1, policy_hidden_sizes=[8]).save(path)
    return path


# ----------------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("case, expected", [
    ("bzip2", "uses zip compression method 12; expected stored or deflate"),
    ("lzma", "uses zip compression method 14"),
    ("encrypted", "is encrypted; expected a plain member"),
    ("patched", "corrupt or truncated (NotImplementedError"),
    ("nested_100", "nested more than 64 levels deep: too deeply to be a manifest"),
    ("nested_100000", "nested too deeply to be a manifest"),
    ("digits_5000", "manifest.json is not valid JSON (Exceeds the limit (4300 digits)"),
    ("infinity_int_setting", "invalid saved config: n_steps must be a finite number, got inf"),
    ("nan_float_setting", "invalid saved config: learning_rate must be a finite number, got nan"),
    ("huge_int_setting", "invalid saved config: policy_hidden_sizes must be at most 9223372036854775807 in "
                         "magnitude (a 64-bit int), got a number of 71 bits"),
    ("huge_float_setting", "invalid saved config: learning_rate must be at most"),
    ("infinity_counter", "saved 'num_timesteps' must be a non-negative int, got inf"),
    ("huge_counter", "saved 'num_timesteps' must be a non-negative int, got 1180591620717411303424"),
    ("huge_box_bound", "a saved Box bound must be a number or 'inf'/'-inf', got an int of 1101 bits"),
    ("npy_8_tib", "declares shape (1099511627776,) of float64 (8796093022208 bytes) but holds 16 bytes"),
    ("truncated_npy_data", "but holds 20 bytes of data; expected them to match (a truncated or crafted .npy)"),
    ("truncated_npy_header", "has a corrupt .npy header"),
    ("truncated_npy_magic", "is not a .npy array (bad magic bytes)"),
])
def test_crafted_model_is_one_line(model, tmp_path, capsys, case, expected):
    out = tmp_path / f"{case}.zip"
    weight = "arrays/policy/params.npy"
    members = _members(model)
    real = dict(members)[weight]
    if case in ("bzip2", "lzma"):
        _write(out, members, zipfile.ZIP_BZIP2 if case == "bzip2" else zipfile.ZIP_LZMA, only=weight)
    elif case in ("encrypted", "patched"):
        _set_flags(_write(out, members), weight, 0x1 if case == "encrypted" else 0x20)
    elif case.startswith("nested_"):
        depth = int(case.split("_")[1])
        _with_config(model, out, **{"config.policy_hidden_sizes": "[" * depth + "]" * depth})
    elif case == "digits_5000":
        _with_config(model, out, seed="7" * 5000)
    elif case == "infinity_int_setting":
        _with_config(model, out, **{"config.n_steps": "Infinity"})
    elif case == "nan_float_setting":
        _with_config(model, out, **{"config.learning_rate": "NaN"})
    elif case == "huge_int_setting":
        _with_config(model, out, **{"config.policy_hidden_sizes": f"[{2**70}]"})
    elif case == "huge_float_setting":
        _with_config(model, out, **{"config.learning_rate": str(2**1100)})
    elif case == "infinity_counter":
        _with_config(model, out, num_timesteps="Infinity")
    elif case == "huge_counter":
        _with_config(model, out, num_timesteps=str(2**70))
    elif case == "huge_box_bound":
        _with_config(model, out, **{"observation_space.high": str(2**1100)})
    else:
        payload = {"npy_8_tib": _npy_header((TiB,)) + bytes(16),
                   "truncated_npy_data": real[:len(_npy_header((1,), "<f4")) + 20],
                   "truncated_npy_header": real[:40],
                   "truncated_npy_magic": real[:4]}[case]
        _write(out, [(name, payload if name == weight else data) for name, data in members])
    assert main(["evaluate", str(out), "--episodes", "1"]) == 2
    line = _error_line(capsys, "evaluate", out)
    assert expected in line, line
    assert "pickle" not in line


def test_config_numbers_name_the_setting():
    for value, message in ((float("inf"), "n_envs must be a finite number, got inf"),
                           (2**64, "n_envs must be at most"),
                           ([1, float("nan")], "policy_hidden_sizes must be a finite number, got nan")):
        key = "policy_hidden_sizes" if isinstance(value, list) else "n_envs"
        with pytest.raises(ValueError, match=message):
            AgentConfig.from_dict({key: value})


@pytest.mark.parametrize("error", ["ResourceExhaustedError", "MemoryError"])
def test_running_out_of_memory_while_building_names_the_file(model, capsys, monkeypatch, error):
    import tensorflow as tf

    from agents_zoo.agents.ppo import PPO

    def setup(self):
        if error == "MemoryError":
            raise MemoryError()
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[8192,8192]")

    monkeypatch.setattr(PPO, "_setup", setup)
    assert main(["evaluate", str(model), "--episodes", "1"]) == 2
    line = _error_line(capsys, "evaluate", model)
    assert f"asks for more memory than this machine has ({error})" in line


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"),
                                   OverflowError("cannot convert float infinity to integer")])
def test_errors_that_slip_past_the_loader_still_name_the_file(model, capsys, monkeypatch, error):
    def load(path, env=None, **kwargs):
        raise error

    monkeypatch.setattr(agents_zoo, "load", load)
    assert main(["evaluate", str(model)]) == 2
    line = _error_line(capsys, "evaluate", model)
    assert f"could not be loaded: {type(error).__name__}: {error}" in line


# ----------------------------------------------------------------------------- expert inspect
def _demos(path, **replace):
    rewards = np.ones((2, 3), np.float32)
    arrays = {"obs": np.zeros((2, 3, 4), np.float32), "acs": np.zeros((2, 3), np.int64), "rews": rewards,
              "ep_rets": rewards.sum(axis=1)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    members = _members(buffer)
    return _write(path, [(name, replace.get(name, data)) for name, data in members])


@pytest.mark.parametrize("case, expected", [
    ("header_8_tb", "declares shape (1000000000000,) of float64 (8000000000000 bytes) but holds 0 bytes"),
    ("truncated_npy_member", "but holds 10 bytes of data; expected them to match (a truncated or crafted .npy)"),
    ("truncated_file", "is truncated (4 bytes): not a complete .npz archive"),
    ("single_npy_cut", "holds a single .npy array"),
    ("bzip2_member", "uses zip compression method 12"),
    ("encrypted_member", "is encrypted"),
    ("garbage", "is not an .npz archive (it starts with b'junk'"),
])
def test_crafted_demonstrations_are_one_line(tmp_path, capsys, case, expected):
    path = tmp_path / f"{case}.npz"
    if case == "header_8_tb":
        _demos(path, **{"obs.npy": _npy_header((10**12,))})
    elif case == "truncated_npy_member":
        _demos(path, **{"rews.npy": _npy_header((2, 3), "<f4") + bytes(10)})
    elif case == "truncated_file":
        path.write_bytes(b"\x93NUM")
    elif case == "single_npy_cut":
        path.write_bytes(_npy_header((3,)) + bytes(5))
    elif case == "bzip2_member":
        source = _demos(tmp_path / "plain.npz")
        _write(path, _members(source), zipfile.ZIP_BZIP2, only="obs.npy")
    elif case == "encrypted_member":
        _set_flags(_demos(path), "acs.npy", 0x1)
    else:
        path.write_bytes(b"junk" * 10)
    assert main(["expert", "inspect", str(path)]) == 2
    line = _error_line(capsys, "expert inspect", path)
    assert expected in line, line
    assert "pickle" not in line
