"""Reference libraries that cannot share our environment get a virtualenv of their own.

imitation 1.0.1 (GAIL's reference, last released January 2025) pins ``gymnasium~=0.29`` and
``stable-baselines3~=2.2.1``, while our agents and SB3 2.9 run on gymnasium 1.x and NumPy 2. So
the first imitation run builds a virtualenv under the user's cache folder
(``~/.cache/agents-zoo/reference-envs/imitation-<hash>``) from the exact versions pinned in
``benchmarks/reference_envs/imitation.txt`` (shipped with the package), reuses it afterwards,
and runs every imitation run's ``python -m benchmarks.runner`` with that interpreter. Runs
already cross the process boundary as JSON (spec in, record out), so only the Python executing
the run changes.

Our own packages reach that interpreter through ``PYTHONPATH`` (the folders this installation
imports them from), not as a second installed copy: the runner there is always the code of
this installation, and it reads the same spec and writes the same record. The runner of an
imitation run imports only NumPy, gymnasium, seals, torch, SB3 and imitation, all pinned in
the environment, never TensorFlow.

The folder name carries a hash of the pin file, so changed pins build a fresh environment; a
half-built one (killed mid-install) has no completion marker and is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Callable

# library -> pin file inside benchmarks/reference_envs/. Libraries absent here run in our environment.
SEPARATE_ENVIRONMENTS = {"imitation": "imitation.txt"}
COMPLETE_MARKER = "agents-zoo-complete"


class ReferenceEnvironmentError(RuntimeError):
    """A reference environment could not be built; the message says what failed and what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("AGENTS_ZOO_CACHE", Path.home() / ".cache" / "agents-zoo")) / "reference-envs"


def pin_text(library: str) -> str:
    return resources.files("benchmarks").joinpath("reference_envs", SEPARATE_ENVIRONMENTS[library]).read_text(
        encoding="utf-8")


def environment_folder(library: str) -> Path:
    digest = hashlib.sha256(f"{sys.version_info[:2]}\n{pin_text(library)}".encode()).hexdigest()[:12]
    return cache_root() / f"{library}-{digest}"


def _python_in(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def our_import_paths() -> list[str]:
    """The folders this installation imports agents_zoo, wrappers and benchmarks from."""
    import agents_zoo
    import benchmarks
    import wrappers

    folders = []
    for module in (agents_zoo, wrappers, benchmarks):
        folder = str(Path(module.__file__).resolve().parent.parent)
        if folder not in folders:
            folders.append(folder)
    return folders


def interpreter_for(library: str, log: Callable[[str], None] | None = None) -> tuple[str, dict[str, str]]:
    """The Python that runs ``library``'s runs and the environment variables it needs.

    Libraries that share our environment get ``sys.executable``. The others get their managed
    virtualenv, built on first use (``log`` says so on screen).
    """
    if library not in SEPARATE_ENVIRONMENTS:
        return sys.executable, {}
    folder = ensure_environment(library, log)
    python_path = os.pathsep.join(our_import_paths())
    # The child must see our packages but none of this environment's site-packages.
    return str(_python_in(folder)), {"PYTHONPATH": python_path, "PYTHONNOUSERSITE": "1"}


def ensure_environment(library: str, log: Callable[[str], None] | None = None) -> Path:
    folder = environment_folder(library)
    if (folder / COMPLETE_MARKER).is_file():
        return folder
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    pins = folder.with_name(folder.name + ".txt")
    say(f"  building the {library} reference environment (once; it needs its own gymnasium/SB3 versions): "
        f"{folder}")
    if folder.exists():
        shutil.rmtree(folder)  # a build that was interrupted
    folder.parent.mkdir(parents=True, exist_ok=True)
    pins.write_text(pin_text(library), encoding="utf-8")
    python = _python_in(folder)
    steps = [[sys.executable, "-m", "venv", str(folder)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(pins)]]
    for command in steps:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if completed.returncode != 0:
            tail = "\n".join(completed.stdout.strip().splitlines()[-15:])
            raise ReferenceEnvironmentError(
                f"could not build the {library} reference environment in {folder} "
                f"(`{' '.join(command)}` exited {completed.returncode}):\n{tail}\n"
                f"Check that pip can reach the package index, or delete {folder} and try again.")
    (folder / COMPLETE_MARKER).write_text(pin_text(library), encoding="utf-8")
    say(f"  {library} reference environment ready: {python}")
    return folder


def describe(library: str) -> str:
    """One line: which Python runs ``library`` and where its versions come from."""
    if library not in SEPARATE_ENVIRONMENTS:
        from benchmarks.runner import library_versions

        versions = ", ".join(f"{name} {version}" for name, version in library_versions(library).items())
        return f"this environment ({sys.executable}): {versions}"
    folder = environment_folder(library)
    state = "built" if (folder / COMPLETE_MARKER).is_file() else "built on first use"
    pinned = [line for line in pin_text(library).splitlines()
              if line.split("==")[0].strip().lower() in ("imitation", "stable-baselines3", "gymnasium", "numpy", "torch")]
    return f"its own virtualenv {folder} ({state}), pinned: {', '.join(pinned)}"
