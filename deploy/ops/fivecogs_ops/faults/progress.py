"""What the suite tells whoever watches it; every method may stay this no-op (--json, tests)."""

from __future__ import annotations

from fivecogs_ops.faults.recovery import FaultRecord
from fivecogs_ops.simulate.catchup import Lag


class SuiteProgress:
    def stage(self, text: str) -> None: ...

    def wave(self, name: str, records: int) -> None: ...

    def sent(self, records: int) -> None: ...

    def fault(self, record: FaultRecord) -> None: ...

    def lag(self, lag: Lag) -> None: ...

    def settled(self, name: str, publish_seconds: float, catch_up_seconds: float) -> None: ...
