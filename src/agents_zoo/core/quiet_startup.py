"""How TensorFlow starts: which CPU kernels it runs, and no start-up log lines on the terminal.

:func:`prefer_onednn_kernels` asks for TF's oneDNN kernels where TF would not pick them itself;
TF reads that once, when it loads, so the package facade (``import agents_zoo``) and
``generative``'s lazy model loader call it before anything imports TensorFlow.

TensorFlow >= 2.18 logs through absl before ``absl::InitializeLog()`` runs, so
``TF_CPP_MIN_LOG_LEVEL`` no longer hides its start-up lines (oneDNN notice, CUDA stub probes,
``cuInit`` failure on machines without a GPU, CPU feature notice): every command printed four to
seven of them before its own output. The CLI imports TensorFlow once through
:func:`import_tensorflow_quietly`, which captures file descriptor 2 while TensorFlow loads and
initializes its devices, drops the lines listed in :data:`STARTUP_NOISE`, and writes every other
line (a real error) back to stderr.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile

STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cuda_platform|cpu_feature_guard|cuda_dnn|cuda_fft|cuda_blas"
    r"|cuda_executor|gpu_device)\.cc:\d+\]"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow)"
)


def prefer_onednn_kernels() -> None:
    """Set ``TF_ENABLE_ONEDNN_OPTS=1`` on x86 unless it is set or TensorFlow is already loaded.

    TF turns its oneDNN CPU kernels on by default only on x86 CPUs with AVX512_VNNI, AVX512_BF16 or
    AMX (TF 2.9 release notes); on the others (AVX2 only: Zen 3 and older, many laptops) it runs
    Eigen's. On an AVX2 Zen 3, oneDNN made PPO, A2C and DQN on Pong 1.40x, 1.24x and 1.30x faster
    and the MLP agents 7% slower (PPO on CartPole) to as fast (DQN on CartPole, PPO on Hopper)
    (benchmarks/results/onednn). A user's own value, or a TF already loaded, is left alone:
    ``TF_ENABLE_ONEDNN_OPTS=0`` keeps Eigen's kernels.
    """
    if "tensorflow" not in sys.modules and platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and initialize its devices with the start-up noise filtered out."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, not at import
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not STARTUP_NOISE.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
