"""`fivecogs faults`: the fault suite. A seeded scenario is played on a stack of the suite's own while services
are killed, the broker and Postgres restarted, the outbox relay crashed, a group rewound and rebalanced, and
poison and duplicates sent; the management report must then equal the independent model exactly."""

from fivecogs_ops.faults.cli import register
from fivecogs_ops.faults.plan import FULL, SHORT, Mode

__all__ = ["FULL", "SHORT", "Mode", "register"]
