"""Outcomes that are not bugs: a partner event that breaks a rule, or a record that cannot be read."""

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


class BadRecord(Exception):
    """A record that cannot become an event: it goes to the dead-letter topic with this kind and detail."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
