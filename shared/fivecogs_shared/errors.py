"""Outcomes that are not bugs: a partner event that breaks a rule (or must wait), or a record that cannot be read."""

from __future__ import annotations


class RuleViolation(Exception):
    """A domain rule refused the event; the partner is told `rule:<name>` with the detail."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"rule:{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    @property
    def reason(self) -> str:
        return f"rule:{self.rule}"


class Awaiting(RuleViolation):
    """The event refers to something not applied yet (`awaits`, e.g. "enterprise:E1"): another partner's event,
    or one still on its way through the chain. It is held until that reference is applied, and rejected with
    this rule only if the wait expires."""

    def __init__(self, rule: str, detail: str, awaits: str) -> None:
        super().__init__(rule, detail)
        self.awaits = awaits


class BadRecord(Exception):
    """A record that cannot become an event: it goes to the dead-letter topic with this kind and detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class Unstorable(ValueError):
    """A value the contract allows but a column cannot hold (an integer beyond int4), found before the write: a
    batch's state writes only each row's last version, so every version is checked as it is made."""


INT4_MAX = 2**31 - 1


def int4(value: int, what: str) -> int:
    if not -INT4_MAX - 1 <= value <= INT4_MAX:
        raise Unstorable(f"{what} {value} is beyond what a 32-bit integer column holds")
    return value
