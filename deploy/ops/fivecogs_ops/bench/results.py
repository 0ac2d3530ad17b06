"""One stage's figures, and what its verification found wrong (a figure is shown only when nothing was)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageResult:
    stage: str
    records: int
    seconds: float = 0.0
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    problems: list[str] = field(default_factory=list)
    processes: int = 1

    @property
    def verified(self) -> bool:
        return not self.problems

    @property
    def rate(self) -> float | None:
        """Records per second, only when every effect was verified."""
        return self.records / self.seconds if self.verified and self.seconds > 0 else None

    @property
    def cpu_per_1k(self) -> float | None:
        if not self.verified or self.cpu_seconds is None or not self.records:
            return None
        return self.cpu_seconds * 1000 / self.records


@dataclass
class ChainStep:
    rate: int  # chains per second asked for
    chains: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    sustained: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class ChainResult:
    steps: list[ChainStep] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def highest_sustained(self) -> int | None:
        rates = [s.rate for s in self.steps if s.sustained]
        return max(rates) if rates else None

    @property
    def verified(self) -> bool:
        return not self.problems and all(not s.problems for s in self.steps)
