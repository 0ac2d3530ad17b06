"""What a service process costs: peak RSS (sampled every 100 ms, and the kernel's own high-water mark VmHWM,
whichever is higher) and CPU seconds (user + system) from a given moment to the end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

SAMPLE_SECONDS = 0.1
MIB = 1024 * 1024


class ProcessMeter:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu_samples: list[tuple[float, float]] = [(time.monotonic(), self.cpu_seconds())]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"meter-{pid}", daemon=True)
        self._thread.start()

    def cpu_seconds(self) -> float:
        try:
            times = self.process.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def stop(self, since: float) -> tuple[float, float]:
        """(CPU seconds from the moment `since` on, peak RSS in MiB); call while the process still runs."""
        cpu = self.cpu_seconds()
        self._stop.set()
        self._thread.join()
        before = [used for moment, used in self.cpu_samples if moment <= since] or [self.cpu_samples[0][1]]
        return cpu - before[-1], max(self.peak_rss, high_water_mark(self.pid)) / MIB

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            except psutil.Error:
                return
            self.cpu_samples.append((time.monotonic(), self.cpu_seconds()))


def high_water_mark(pid: int) -> int:
    """VmHWM of /proc/<pid>/status in bytes (Linux), or 0."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
