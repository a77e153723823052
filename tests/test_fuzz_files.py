"""Fuzzing the loaders: mutated real files fail only with the loaders' own errors, naming the file.

Real small files (a saved PPO, a DQN checkpoint with its replay buffer, a VAE, a demonstrations
``.npz``) are mutated by a seeded generator -- bytes flipped, inserted, deleted or cut anywhere;
zip members replaced, dropped, duplicated, added, recompressed or flagged encrypted; manifest
fields given wrong types, huge or non-finite numbers, deep nesting; arrays given NaN, other
dtypes, shapes and values -- and each result is loaded with the public loader
(``agents_zoo.load``, ``generative.load_model``, ``load_demonstrations``). Every load must either
succeed (and the loaded model then predict) or raise an ``ArchiveError`` / ``DemonstrationError``
(the errors SECURITY.md names) whose message names the file: never a raw ``KeyError``,
``IndexError``, ``TypeError``, ``struct.error``, ``zlib.error``, ``UnicodeDecodeError``,
``RecursionError``, ``OverflowError`` or a ``ValueError`` from deep inside NumPy.

The seed and the number of cases are fixed, so a run is reproducible; a failure prints the case
(its mutation) to reproduce it with ``mutate(...)``.
"""

from __future__ import annotations

import io
import json
import random
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import agents_zoo
from agents_zoo.core.serialization import ArchiveError
from agents_zoo.demonstrations import DemonstrationError, load_demonstrations

ALLOWED = (ArchiveError, DemonstrationError)
SEED = 20240611
# Cases per file kind: 25-40 s in all on one busy CPU core, making the files included (an agent
# load that gets as far as building the networks costs ~0.2 s; most mutations are refused
# before that). Runs with other seeds and 10x the cases found nothing more.
CASES = {"ppo": 120, "dqn": 120, "vae": 60, "demos": 400}


# ----------------------------------------------------------------------------- mutations
def _read_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def _write_members(members: list[tuple[zipfile.ZipInfo | str, bytes]], compress_type: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" when a case duplicates a member
        with zipfile.ZipFile(buffer, "w") as archive:
            for info, payload in members:
                if isinstance(info, str):
                    info = zipfile.ZipInfo(info)
                else:
                    info = _copy_info(info)
                if compress_type is not None:
                    info.compress_type = compress_type
                archive.writestr(info, payload)
    return buffer.getvalue()


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = info.compress_type
    copy.external_attr = info.external_attr
    return copy


def _bytes_mutation(rng: random.Random, data: bytes, focus: int | None = None) -> tuple[bytes, str]:
    """Flip, insert, delete or cut bytes; ``focus`` limits offsets to the first bytes (a header)."""
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))), "fill empty"
    limit = min(len(data), focus) if focus else len(data)
    offset = rng.randrange(limit)
    how = rng.choice(("flip", "insert", "delete", "cut", "overwrite"))
    if how == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(limit)] ^= 1 << rng.randrange(8)
        return bytes(out), "flip bits"
    if how == "insert":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return data[:offset] + junk + data[offset:], f"insert {len(junk)} bytes at {offset}"
    if how == "delete":
        length = rng.randint(1, 256)
        return data[:offset] + data[offset + length:], f"delete {length} bytes at {offset}"
    if how == "cut":
        return data[:offset], f"cut at {offset}"
    text = rng.choice([b"\xff" * 8, b"\x00" * 8, b"9" * 8, b"'O'", b"(99999999999,", b"True", b"\x93NUMPY"])
    return data[:offset] + text + data[offset + len(text):], f"overwrite {text!r} at {offset}"


_BIG = "__BIG_NUMBER__"
_NESTED = "__NESTED_70__"
_DEEP = "__DEEP_NESTING__"
WEIRD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, -1e-300, 2**70, -(2**70), 2**1100, 10**30, 1e308, float("nan"), float("inf"),
    float("-inf"), "", "x", "inf", "agent/ppo", [], {}, [1, 2, 3], [[1]], {"type": "Box"}, {"a": [None]},
    [float("nan")], [2**70], [-5], ["64"], "../../etc/passwd", "gymnasium.envs:CartPole", _BIG, _DEEP,
    "__NESTED_70__",
]


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _json_paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value[:8]):
            paths += _json_paths(child, prefix + (index,))
    return paths


def _manifest_mutation(rng: random.Random, text: bytes) -> tuple[bytes, str]:
    manifest = json.loads(text)
    paths = [p for p in _json_paths(manifest) if p]
    path = rng.choice(paths)
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    how = rng.random()
    if how < 0.15 and isinstance(parent, dict):
        del parent[last]
        description = f"delete manifest {path}"
    elif how < 0.2 and isinstance(parent, dict):
        parent[f"unknown_{rng.randrange(100)}"] = rng.choice(WEIRD_VALUES[:12])
        description = f"add a key next to {path}"
    else:
        value = rng.choice(WEIRD_VALUES)
        parent[last] = value
        description = f"manifest {path} = {str(value)[:40]}"
    encoded = json.dumps(manifest)
    encoded = encoded.replace(json.dumps(_BIG), "7" * 5000)  # beyond Python's 4300-digit int parsing
    depth = rng.choice((100, 900, 5000))
    encoded = encoded.replace(json.dumps(_DEEP), "[" * depth + "]" * depth)
    encoded = encoded.replace(json.dumps(_NESTED), "[" * 70 + "1" + "]" * 70)  # just past the manifest limit
    return encoded.encode(), description


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _array_mutation(rng: random.Random, payload: bytes) -> tuple[bytes, str]:
    array = np.load(io.BytesIO(payload), allow_pickle=False)
    how = rng.choice(("nan", "inf", "dtype", "shape", "empty", "scalar", "values", "object", "huge", "negate"))
    if how in ("nan", "inf") and array.size:
        out = array.astype(np.float64 if array.dtype.kind != "f" else array.dtype).copy()
        out.reshape(-1)[rng.randrange(out.size)] = np.nan if how == "nan" else -np.inf
        return _npy(out), f"{how} in array"
    if how == "dtype":
        dtype = rng.choice(["<f8", ">f4", "<i2", "|u1", "|b1", "<c8", "<U3", "|V4", "<m8[s]",
                            [("a", "<f4"), ("b", "<i4")]])
        try:
            out = array.astype(dtype) if not isinstance(dtype, list) else np.zeros(array.shape, dtype)
        except (TypeError, ValueError):
            out = np.zeros(array.shape, dtype)
        return _npy(out), f"array as {dtype}"
    if how == "shape":
        shapes = [(array.size,), (1, *array.shape), array.shape[::-1], (*array.shape, 1), array.shape[1:],
                  (array.size + 1,)]
        shape = rng.choice(shapes)
        out = np.resize(array, shape) if int(np.prod(shape)) else np.zeros(shape, array.dtype)
        return _npy(out), f"array reshaped to {shape}"
    if how == "empty":
        return _npy(np.zeros((0, *array.shape[1:]), array.dtype)), "empty array"
    if how == "scalar":
        return _npy(np.array(array.reshape(-1)[0] if array.size else 0, array.dtype)), "0-d array"
    if how == "values" and array.size:
        out = array.copy()
        index = rng.randrange(out.size)
        if out.dtype.kind in "iu":
            out.reshape(-1)[index] = rng.choice([-1, 2, 7, np.iinfo(out.dtype).max])
        elif out.dtype.kind == "b":
            out.reshape(-1)[index] = not out.reshape(-1)[index]
        else:
            out.reshape(-1)[index] = rng.choice([2.0, -3.5, 0.5, 1e30])
        return _npy(out), "a value changed"
    if how == "object":
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        return header.getvalue() + b"\x80\x04N.", "object array"
    if how == "huge" and array.size:
        out = array.astype(np.float64) * 1e300
        return _npy(out), "values times 1e300"
    out = -array if array.dtype.kind in "if" else array
    return _npy(out), "negated"


def mutate(rng: random.Random, data: bytes, has_manifest: bool) -> tuple[bytes, str]:
    """One mutation of a zip (archive or .npz) file, and what it did."""
    members = _read_members(data)
    names = [info.filename for info, _ in members]
    how = rng.random()
    if how < 0.15:
        mutated, description = _bytes_mutation(rng, data)
        return mutated, f"file: {description}"
    if how < 0.25:
        index = rng.randrange(len(members))
        mutated, description = _bytes_mutation(rng, members[index][1], focus=160)
        members[index] = (members[index][0], mutated)
        return _write_members(members), f"{names[index]}: {description} (header)"
    if how < 0.33:
        index = rng.randrange(len(members))
        mutated, description = _bytes_mutation(rng, members[index][1])
        members[index] = (members[index][0], mutated)
        return _write_members(members), f"{names[index]}: {description}"
    if how < 0.38:
        index = rng.randrange(len(members))
        del members[index]
        return _write_members(members), f"drop {names[index]}"
    if how < 0.43:
        index = rng.randrange(len(members))
        info, payload = members[index]
        other = members[rng.randrange(len(members))][1]
        members.insert(rng.randrange(len(members) + 1), (info.filename, rng.choice([payload, other, b""])))
        return _write_members(members), f"duplicate {names[index]}"
    if how < 0.47:
        name = rng.choice(["arrays/extra.npy", "extra.npy", "../evil.npy", "/abs.npy", "a\\b.npy",
                           "arrays/policy/000.npy", "manifest.json", "obs.npy"])
        members.append((name, members[rng.randrange(len(members))][1]))
        return _write_members(members), f"add member {name}"
    if how < 0.52:
        method = rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        return _write_members(members, compress_type=method), f"recompress with method {method}"
    if how < 0.55:
        index = rng.randrange(len(members))
        flags = rng.choice([0x1, 0x20, 0x41])
        return _patch_flags(_write_members(members), names[index], flags), f"{names[index]}: flag bits {flags:#x}"
    if has_manifest and how < 0.8:
        index = names.index("manifest.json")
        mutated, description = _manifest_mutation(rng, members[index][1])
        members[index] = (members[index][0], mutated)
        return _write_members(members), description
    arrays = [i for i, name in enumerate(names) if name.endswith(".npy")]
    index = rng.choice(arrays)
    mutated, description = _array_mutation(rng, members[index][1])
    members[index] = (members[index][0], mutated)
    return _write_members(members), f"{names[index]}: {description}"


def _patch_flags(data: bytes, member: str, flags: int) -> bytes:
    """Set a member's general-purpose flag bits in both its local header and the central
    directory (zipfile cannot write an encrypted or patched member itself)."""
    out = bytearray(data)
    encoded = member.encode()
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            if out[start + name_offset: start + name_offset + len(encoded)] == encoded:
                out[start + flag_offset: start + flag_offset + 2] = flags.to_bytes(2, "little")
            start += 4
    return bytes(out)


# ----------------------------------------------------------------------------- the files
@dataclass
class Target:
    path: Path
    load: Callable[[Path], Any]
    has_manifest: bool
    check: Callable[[Any], None] = lambda loaded: None


def _predicts(agent: Any) -> None:
    """A model that loaded must work: predict an action of its space; a restored replay buffer
    must hand out batches of finite numbers."""
    observation = agent.observation_space.sample()
    action, _ = agent.predict(observation, deterministic=True)
    assert agent.action_space.contains(np.asarray(action, dtype=agent.action_space.dtype)), action
    replay = getattr(agent, "replay", None)
    if replay is not None and len(replay):
        batch = replay.sample(np.random.default_rng(0), 4)
        for name, values in batch._asdict().items():
            assert np.all(np.isfinite(values)), name
        assert np.all((batch.actions >= 0) & (batch.actions < agent.action_space.n))


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> dict[str, Target]:
    folder = tmp_path_factory.mktemp("originals")
    ppo = agents_zoo.make("ppo", "CartPole-v1", seed=0, n_envs=1, n_steps=32, batch_size=32,
                          normalize_observation=True, normalize_reward=True, policy_hidden_sizes=[8])
    ppo.learn(64).save(folder / "ppo.zip")
    dqn = agents_zoo.make("dqn", "CartPole-v1", seed=0, learning_starts=40, buffer_size=100, train_freq=4,
                          batch_size=8, policy_hidden_sizes=[8], n_steps=2, prioritized_replay=True)
    dqn.learn(80).save(folder / "dqn.zip", include_replay_buffer=True)
    from generative import VAE, VAEConfig, load_model

    VAE(VAEConfig(image_shape=(1, 8, 8), architecture="mlp", hidden_units=4)).save(folder / "vae.zip")
    rng = np.random.default_rng(0)
    rewards = rng.random((3, 5)).astype(np.float32)
    np.savez_compressed(folder / "demos.npz", obs=rng.standard_normal((3, 5, 4)).astype(np.float32),
                        acs=rng.integers(0, 2, (3, 5)), rews=rewards, ep_rets=rewards.sum(axis=1),
                        lens=np.array([5, 5, 5]), final_obs=np.zeros((3, 4), np.float32),
                        terminal=np.array([True, False, True]))
    return {
        "ppo": Target(folder / "ppo.zip", agents_zoo.load, True, _predicts),
        # With an env: the replay buffer, counters and episode state are restored too.
        "dqn": Target(folder / "dqn.zip", lambda path: agents_zoo.load(path, env="CartPole-v1"), True, _predicts),
        "vae": Target(folder / "vae.zip", load_model, True),
        "demos": Target(folder / "demos.npz", load_demonstrations, False, lambda demos: demos.transitions()),
    }


def fuzz(target: Target, cases: int, seed: int, folder: Path) -> tuple[list[str], dict[str, int]]:
    """Load ``cases`` mutations of ``target``; return the failures and a count of outcomes."""
    rng = random.Random(seed)
    original = target.path.read_bytes()
    failures, outcomes = [], {"loaded": 0, "refused": 0}
    for case in range(cases):
        data, description = mutate(rng, original, target.has_manifest)
        path = folder / f"case{case:04d}{target.path.suffix}"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = target.load(path)
                target.check(loaded)
            outcomes["loaded"] += 1
        except ALLOWED as exc:
            outcomes["refused"] += 1
            if str(path) not in str(exc):
                failures.append(f"case {case} ({description}): {type(exc).__name__} does not name the file: {exc}")
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            failures.append(f"case {case} ({description}): {type(exc).__name__}: {str(exc)[:300]}")
        path.unlink()
    return failures, outcomes


@pytest.mark.parametrize("kind", list(CASES))
def test_mutated_files_fail_only_with_the_loaders_errors(targets, tmp_path, kind):
    started = time.perf_counter()
    target = targets[kind]
    target.load(target.path)  # the original loads
    failures, outcomes = fuzz(target, CASES[kind], SEED + list(CASES).index(kind), tmp_path)
    print(f"{kind}: {outcomes} in {time.perf_counter() - started:.1f} s")  # shown with -s
    assert not failures, "\n".join(failures[:20])
    assert outcomes["refused"] > CASES[kind] // 2  # the mutations do reach the checks
