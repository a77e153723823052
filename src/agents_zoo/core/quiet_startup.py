"""Import TensorFlow without its start-up log lines on the terminal.

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
import re
import sys
import tempfile

STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cuda_platform|cpu_feature_guard|cuda_dnn|cuda_fft|cuda_blas"
    r"|cuda_executor|gpu_device)\.cc:\d+\]"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow)"
)


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
