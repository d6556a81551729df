"""Measuring one benchmark case: time, peak memory, FLOPs, and the machine's matmul limit."""
import os
import resource
import statistics
import threading
import time
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; else the lifetime peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory while the ``with`` block runs: max allocated on CUDA, else RSS sampled
    every few milliseconds by a thread."""

    def __init__(self, device: str, interval: float = 0.005):
        self.device, self.interval, self.peak = device, interval, 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (forward and backward), from torch's operator counter."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def matmul_flops_per_s(device: str, n: int = 2048, repeats: int = 5) -> float:
    """The machine's own fp32 matmul throughput: best of ``repeats`` n x n products."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def timing_stats(times: List[float]) -> Dict[str, float]:
    """Median, min, max and the interquartile spread of per-iteration seconds."""
    ordered = sorted(times)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    median = statistics.median(ordered)
    return {"median_s": median, "min_s": ordered[0], "max_s": ordered[-1],
            "iqr_s": quartiles[2] - quartiles[0], "iters_per_s": 1.0 / median}
