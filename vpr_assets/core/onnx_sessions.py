"""ONNX Runtime on a CPU, shared by the OCR's networks (text/ocr_runtime.py) and the image networks
(vision/onnx_embedder.py): the cores this process may use, one way to open a session, and an export
cache whose file is made again when it is missing or does not load."""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx")  # how a network's forward pass runs: its torch module, or ONNX Runtime (CPU)


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, capped by a cgroup v2 CPU quota if any."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def cpu_session(path: Path, threads: int):
    """An ONNX Runtime CPU session: `threads` intra-op threads, one inter-op, every graph optimisation."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


_LOCK = threading.Lock()


def cached_session(target: Path, threads: int, export: Callable[[Path], None]):
    """A session on the exported file `target`, made first by `export(target)` (which writes it
    atomically) when the file is missing or does not load (truncated, corrupt): never a crash.
    One export at a time per process."""
    with _LOCK:
        if target.exists():
            try:
                return cpu_session(target, threads)
            except Exception as e:  # truncated or corrupt: export again below
                log.warning("ONNX cache file %s unreadable (%s); exporting again", target, e)
        export(target)
        return cpu_session(target, threads)
