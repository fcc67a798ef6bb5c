"""CPU and memory of the processes under test, read with psutil from outside.

CPU is read as counters (user + system seconds, this process only, not its children)
at the edges of each timed window; memory is sampled by a background thread, because a
peak between two reads would otherwise be missed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

__all__ = ["ProcessMonitor", "RssSample"]

MB = 1024 * 1024


@dataclass(slots=True)
class RssSample:
    t: float  # seconds since the monitor started
    rss_mb: dict[str, float]


@dataclass
class ProcessMonitor:
    """Watches named processes; a name may be re-pointed at a new pid (a restarted worker)."""

    interval_s: float = 0.2
    keep_timeline: bool = False
    procs: dict[str, psutil.Process] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)  # over the whole run
    window_peak_mb: dict[str, float] = field(default_factory=dict)  # since reset_window()
    timeline: list[RssSample] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = field(default_factory=time.monotonic)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            current = self.procs.get(name)
            if current is None or current.pid != pid:
                self.procs[name] = psutil.Process(pid)

    def cpu(self) -> dict[str, float]:
        """User + system CPU seconds so far, per name (a vanished process reads 0)."""
        out: dict[str, float] = {}
        with self._lock:
            items = list(self.procs.items())
        for name, proc in items:
            try:
                times = proc.cpu_times()
                out[name] = times.user + times.system
            except psutil.Error:
                out[name] = 0.0
        return out

    @staticmethod
    def system_cpu() -> dict[str, float]:
        """Whole-machine CPU seconds: busy (everyone's, not just ours) and stolen by the hypervisor."""
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        steal = getattr(times, "steal", 0.0)
        return {"busy": sum(times) - idle - steal, "steal": steal}

    def sample(self) -> dict[str, float]:
        rss: dict[str, float] = {}
        with self._lock:
            items = list(self.procs.items())
        for name, proc in items:
            try:
                rss[name] = proc.memory_info().rss / MB
            except psutil.Error:
                continue
        with self._lock:
            for name, value in rss.items():
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), value)
                self.window_peak_mb[name] = max(self.window_peak_mb.get(name, 0.0), value)
            if self.keep_timeline:
                self.timeline.append(RssSample(time.monotonic() - self._t0, rss))
        return rss

    def reset_window(self) -> None:
        with self._lock:
            self.window_peak_mb = {}

    def window_peaks(self) -> dict[str, float]:
        self.sample()  # include the state at the window's end
        with self._lock:
            return dict(self.window_peak_mb)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> ProcessMonitor:
        self._t0 = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="bench-rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
