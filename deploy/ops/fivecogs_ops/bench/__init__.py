"""`fivecogs bench`: the throughput instrument of issue 14. The ceiling (the raw pipeline of the services'
design), a naive per-message subscriber and each service draining a backlog of its own, all on the same stack in
one run with fresh topics, groups and schemas; the chain's latency at steady rates; two replicas of one group."""

from fivecogs_ops.bench.cli import register

__all__ = ["register"]
