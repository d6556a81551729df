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


def _best_seconds(fn: Callable[[], object], device: str, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def peak_flops_per_s(device: str, repeats: int = 5) -> Dict[str, float]:
    """The machine's own fp32 throughput, best of ``repeats``: a 2048 x 2048 matmul (BLAS) and a
    3x3 convolution of layer4's shape in channels-last (oneDNN on the CPU, which may use wider
    vector units than BLAS does); ``peak`` is the larger of the two."""
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    matmul = 2 * n ** 3 / _best_seconds(lambda: torch.mm(a, b), device, repeats)
    x = torch.randn(32, 512, 14, 14, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 512, 3, 3, device=device).contiguous(memory_format=torch.channels_last)
    conv = 2 * x.numel() * 512 * 9 / _best_seconds(
        lambda: torch.nn.functional.conv2d(x, w, padding=1), device, repeats)
    return {"matmul": matmul, "conv": conv, "peak": max(matmul, conv)}


def timing_stats(times: List[float]) -> Dict[str, float]:
    """Median, min, max and the interquartile spread of per-iteration seconds."""
    ordered = sorted(times)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    median = statistics.median(ordered)
    return {"median_s": median, "min_s": ordered[0], "max_s": ordered[-1],
            "iqr_s": quartiles[2] - quartiles[0], "iters_per_s": 1.0 / median}
