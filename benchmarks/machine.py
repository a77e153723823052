"""The machine a run ran on: its CPU, and how many of its cores a run may use.

Every run record carries :func:`describe_machine` under ``"machine"``, so a report says which
CPU its numbers came from: the model (with its x86 family and model numbers: a cloud VM's model
name, such as "AMD EPYC", is the same for CPU generations of different speeds), the logical CPU
count, and whether the CPU has the bf16 instructions (AVX512_BF16, AMX-BF16) that oneDNN uses
for bf16 convolutions and matmuls, which decide whether ``compute_dtype="bfloat16"`` is faster
than float32 there.

Standard library only: the runner reads it before it sets the thread variables, and the sweep
process imports neither NumPy nor TensorFlow (``agents_zoo.core.networks.hardware_has_bfloat16``
asks TensorFlow for GPUs, so it is not used here).
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import time
from typing import Any

from benchmarks.config import WHOLE_MACHINE

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""The /proc/cpuinfo flags of x86 CPUs with native bf16 arithmetic, as the records name them."""
BF16_FLAG_NAMES = {"avx512_bf16": "AVX512_BF16", "amx_bf16": "AMX-BF16"}


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_count(protocol: str) -> int:
    """Threads of every pool of a run: one, or all the machine's cores for a whole-machine run."""
    return machine_cores() if protocol == WHOLE_MACHINE else 1


@functools.cache
def cpu_description(cpuinfo_path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """``{"cpu_model": ..., "cpu_id": ..., "avx512_bf16": ..., "amx_bf16": ...}``; ``cpu_id`` and the
    flags are None where unknown.

    The model is /proc/cpuinfo's ``model name`` (x86) or ``Model``/``Hardware`` (ARM boards), else
    ``platform.processor()`` (macOS, Windows) or the architecture. ``cpu_id`` is x86's ``cpu
    family`` and ``model`` numbers ("family 25, model 17": AMD Zen 4 Genoa; Zen 5 is family 26):
    VMs often name every EPYC or Xeon generation alike, and their speeds differ. The flags come
    from the ``flags`` line only (x86 Linux).
    """
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo_path, encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                name, colon, value = line.partition(":")
                if colon:
                    fields.setdefault(name.strip().lower(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or fields.get("model") or fields.get("hardware")
    model = model or platform.processor() or platform.machine() or "unknown"
    flags = set(fields["flags"].split()) if "flags" in fields else None
    family, model_number = fields.get("cpu family", ""), fields.get("model", "")
    cpu_id = f"family {family}, model {model_number}" if family.isdigit() and model_number.isdigit() else None
    return {"cpu_model": model, "cpu_id": cpu_id, **{flag: None if flags is None else flag in flags for flag in BF16_FLAGS}}


def describe_machine() -> dict[str, Any]:
    """The ``"machine"`` field of a run record (``cpu_count`` is the logical CPU count)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "cpu_count": os.cpu_count(), "cores": machine_cores(),
            **cpu_description(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def machine_text(machine: dict[str, Any] | None) -> str:
    """One line naming a record's machine; records made before the CPU was recorded say so.

    >>> machine_text({"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_count": 2, "avx512_bf16": True,
    ...               "amx_bf16": True})
    'Intel(R) Xeon(R) Processor, 2 logical CPUs, bf16: AVX512_BF16, AMX-BF16'
    >>> machine_text({"cpu_model": "AMD EPYC", "cpu_id": "family 25, model 17", "cpu_count": 2})
    'AMD EPYC (family 25, model 17), 2 logical CPUs'
    >>> machine_text({"cpu_count": 8})
    'CPU model not recorded, 8 logical CPUs'
    """
    if not machine:
        return "machine not recorded"
    parts = [machine.get("cpu_model") or "CPU model not recorded"]
    if machine.get("cpu_id"):  # records made before it was recorded name the model alone
        parts[0] += f" ({machine['cpu_id']})"
    if machine.get("cpu_count"):
        parts.append(f"{machine['cpu_count']} logical CPUs")
    known = [flag for flag in BF16_FLAGS if machine.get(flag) is not None]
    if known:
        present = [BF16_FLAG_NAMES[flag] for flag in known if machine[flag]]
        parts.append("bf16: " + ", ".join(present) if present else "no AVX512_BF16/AMX-BF16")
    return ", ".join(parts)
