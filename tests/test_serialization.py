"""Loading can never run code: crafted files are rejected with clear errors, nothing executed."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from agents_zoo.agents.random_agent import RandomAgent
from agents_zoo.core.base import BaseAgent
from agents_zoo.core.serialization import (
    ArchiveError,
    atomic_append_line,
    atomic_open,
    load_archive,
    save_archive,
)

MARKER = "agents_zoo_pwned_marker"


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _manifest(**changes):
    manifest = {"format": "agents-zoo-archive", "format_version": 1, "kind": "agent/random",
                "config": {}, "metadata": {}, "arrays": []}
    manifest.update(changes)
    return json.dumps(manifest).encode()


def test_roundtrip_arrays_and_config(tmp_path):
    arrays = {"policy/000": np.arange(6, dtype=np.float32).reshape(2, 3), "stats/count": np.array(3.0)}
    path = save_archive(tmp_path / "a.zip", kind="agent/x", config={"lr": 0.1, "sizes": (1, 2)}, arrays=arrays)
    archive = load_archive(path, expected_kind="agent")
    assert archive.kind == "agent/x" and archive.config == {"lr": 0.1, "sizes": [1, 2]}
    np.testing.assert_array_equal(archive.arrays["policy/000"], arrays["policy/000"])
    assert "tensorflow" in archive.metadata["versions"]


def test_pickle_payload_in_array_is_refused_and_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = io.BytesIO()
    np.save(payload, np.array([Exploit()], dtype=object), allow_pickle=True)
    path = _zip(tmp_path / "evil.zip", {"manifest.json": _manifest(arrays=["w"]), "arrays/w.npy": payload.getvalue()})
    with pytest.raises(ArchiveError, match="array 'w' cannot be read without pickle"):
        load_archive(path)
    assert not (tmp_path / MARKER).exists()


def test_raw_pickle_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.zip"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ArchiveError, match="not a valid agents-zoo archive"):
        RandomAgent.load(path)
    assert not (tmp_path / MARKER).exists()


def test_zip_with_parent_paths_is_refused(tmp_path):
    path = _zip(tmp_path / "slip.zip", {"manifest.json": _manifest(), "../../etc/evil": b"x"})
    with pytest.raises(ArchiveError, match=r"unsafe member path '../../etc/evil'"):
        load_archive(path)


def test_truncated_zip_is_refused(tmp_path):
    agent = RandomAgent("CartPole-v1", seed=0)
    data = agent.save(tmp_path / "good.zip").read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="truncated|not a readable zip|corrupt"):
        RandomAgent.load(truncated)


def test_declared_huge_size_is_refused(tmp_path):
    path = _zip(tmp_path / "bomb.zip", {"manifest.json": _manifest(), "arrays/big.npy": b"\0" * 1000})
    with pytest.raises(ArchiveError, match="declare .* uncompressed bytes, more than the limit 500"):
        load_archive(path, max_bytes=500)


@pytest.mark.parametrize("manifest, message", [
    (_manifest(format_version=99), "format_version 99; this version reads 1..1"),
    (_manifest(format="other"), "has format 'other'"),
    (_manifest(config=[1, 2]), "field 'config' must be dict, got list"),
    (_manifest(arrays=["../x"]), "invalid array name '../x'"),
    (b"{not json", "is not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got list"),
])
def test_bad_manifest_is_refused(tmp_path, manifest, message):
    path = _zip(tmp_path / "bad.zip", {"manifest.json": manifest})
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_archive(path)


def test_config_with_wrong_types_is_refused(tmp_path):
    agent = RandomAgent("CartPole-v1", seed=0)
    path = agent.save(tmp_path / "a.zip")
    archive = load_archive(path)
    archive.config["config"]["n_envs"] = "many"
    save_archive(path, kind=archive.kind, config=archive.config, arrays=archive.arrays)
    with pytest.raises(ArchiveError, match="invalid saved config: n_envs must be an int, got 'many'"):
        RandomAgent.load(path)


def test_wrong_kind_is_refused(tmp_path):
    path = save_archive(tmp_path / "g.zip", kind="generative/vae", config={})
    with pytest.raises(ArchiveError, match="holds 'generative/vae', expected 'agent/random'"):
        RandomAgent.load(path)


def test_weights_of_wrong_shape_are_refused(tmp_path):
    import keras
    from agents_zoo.core.base import arrays_to_variables, variables_to_arrays

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    arrays = variables_to_arrays("policy", model)
    arrays["policy/000"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"policy/000 .* has shape \(3, 4\) but the file holds \(5, 4\)"):
        arrays_to_variables("policy", model, arrays)


def test_generic_load_dispatches_on_kind(tmp_path):
    path = RandomAgent("CartPole-v1", seed=0).save(tmp_path / "r.zip")
    assert isinstance(BaseAgent.load(path), RandomAgent)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("new partial")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


def test_atomic_append_line(tmp_path):
    path = tmp_path / "results.jsonl"
    atomic_append_line(path, '{"a": 1}')
    atomic_append_line(path, '{"a": 2}\n')
    assert path.read_text().splitlines() == ['{"a": 1}', '{"a": 2}']


def test_zero_dimensional_arrays_keep_their_shape(tmp_path):
    path = save_archive(tmp_path / "s.zip", kind="x", config={}, arrays={"count": np.array(3.0)})
    assert load_archive(path).arrays["count"].shape == ()


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_archive(tmp_path / "m.zip", kind="x", config={})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
