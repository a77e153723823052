"""Temporaries left by killed processes are removed by the next writer, and only those.

Atomic writes name their temporary sibling ``.NAME.<pid>-<host>.<random><suffix>``; a write to
NAME removes the siblings of NAME whose pid is dead on this host (core.temporary). Temporary
folders made by ``owned_temporary_directory`` follow the same rule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from agents_zoo.core import temporary
from agents_zoo.core.serialization import atomic_write_text, save_archive


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not temporary.pid_is_alive(process.pid)
    return process.pid


def test_a_write_removes_only_the_stale_temporaries_of_its_target(tmp_path):
    dead, host = _dead_pid(), temporary.host_tag()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    names = {
        "stale": f".f.txt.{dead}-{host}.{'ab' * 8}.tmp",
        "stale_of_another_target": f".g.txt.{dead}-{host}.{'cd' * 8}.tmp",
        "owner_alive": f".f.txt.{os.getppid()}-{host}.{'ef' * 8}.tmp",
        "other_machine": f".f.txt.{dead}-{other_host}.{'01' * 8}.tmp",
        "earlier_version": ".f.txt.k3j_x9q2.tmp",  # mkstemp's name: no owner to check
        "not_ours": f".f.txt.{dead}-{host}.{'ab' * 8}.tmp.bak",
    }
    for name in names.values():
        (tmp_path / name).write_text("partial")
    atomic_write_text(tmp_path / "f.txt", "new")
    assert (tmp_path / "f.txt").read_text() == "new"
    left = {path.name for path in tmp_path.iterdir()}
    assert names["stale"] not in left
    assert left == {"f.txt", *(name for key, name in names.items() if key != "stale")}


def test_a_write_killed_midway_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "model.zip"
    save_archive(target, kind="x", config={"version": 1})
    script = textwrap.dedent(f"""
        import sys, time
        from agents_zoo.core.serialization import atomic_open
        with atomic_open({str(target)!r}, "wb") as handle:
            handle.write(b"half a model")
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    leftovers = [path.name for path in tmp_path.iterdir() if path.name != "model.zip"]
    assert leftovers == [f".model.zip.{writer.pid}-{temporary.host_tag()}.{leftovers[0].split('.')[-2]}.tmp"]
    save_archive(target, kind="x", config={"version": 2})  # the next write of the same file
    assert [path.name for path in tmp_path.iterdir()] == ["model.zip"]


def test_temporary_folders_of_dead_runs_are_removed(tmp_path):
    dead, host = _dead_pid(), temporary.host_tag()
    stale = tmp_path / f"agents-zoo-bench-{dead}-{host}.{'ab' * 8}"
    live = tmp_path / f"agents-zoo-bench-{os.getppid()}-{host}.{'cd' * 8}"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "spec.json").write_text("{}")
    with temporary.owned_temporary_directory("agents-zoo-bench-", dir=tmp_path) as folder:
        assert os.path.basename(folder).startswith(f"agents-zoo-bench-{os.getpid()}-{host}.")
        assert not stale.exists() and live.exists()
    assert not os.path.exists(folder) and live.exists()


@pytest.mark.parametrize("name", ["", ".f.txt.", ".f.txt.12-abc.tmp", ".f.txt.0-{host}.abababababababab.tmp",
                                  ".f.txt.-5-{host}.abababababababab.tmp"])
def test_names_without_a_dead_owner_are_never_stale(name):
    assert temporary.stale_owner(name.format(host=temporary.host_tag()), ".f.txt.", ".tmp") is None
