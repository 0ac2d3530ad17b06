"""The chain (placeholder while it is built)."""

from __future__ import annotations

from typing import Any

from fivecogs_ops.bench.context import Bench
from fivecogs_ops.bench.results import ChainResult


async def chain(bench: Bench, plan: Any) -> ChainResult:
    return ChainResult(problems=["the chain stage is not built yet"])
