"""Who may do what on Kafka: the ACLs of every fivecogs principal, as data (docs/security.md has the table).

Nothing is allowed that an ACL here does not allow (`allow.everyone.if.no.acl.found=false`); only the
provisioning admin is a super user.
"""

from __future__ import annotations

from collections.abc import Iterable

from fivecogs_ops.kafka_security import Acl, Operation, PatternKind
from fivecogs_shared.contracts import COGS, UPSTREAM, dlq_topic, events_topic, feedback_topic, ingest_topic

# The stack's own principals: the provisioning admin (the only super user), one per service, the operator (lag,
# the ops page) and the replayer (`fivecogs dlq replay`, `fivecogs replay`). Partners come with `fivecogs partners`.
ADMIN = "admin"
OPERATOR = "operator"
REPLAYER = "replayer"
SERVICE_GROUPS = "fivecogs-"  # every service's consumer groups begin so


def service_username(cog: str) -> str:
    return f"service-{cog}"


STACK_USERS = (ADMIN, *(service_username(cog) for cog in COGS), OPERATOR, REPLAYER)


def user(name: str) -> str:
    return f"User:{name}"


def partner_user(partner: str) -> str:
    """A partner's Kafka username: `partner.<id>` (ids have no dots, so this names one partner only)."""
    return f"partner.{partner}"


def _topic(principal: str, name: str, *operations: Operation, prefixed: bool = False) -> list[Acl]:
    pattern: PatternKind = "prefixed" if prefixed else "literal"
    return [Acl(principal, "topic", name, op, pattern) for op in operations]


def _group(principal: str, prefix: str, *operations: Operation) -> list[Acl]:
    return [Acl(principal, "group", prefix, op, "prefixed") for op in operations]


def service_acls(cog: str, username: str) -> list[Acl]:
    """A service writes its own events topic (and creates it), reads its partners' ingest topics and its
    upstream events, writes the dead letters of what it reads and every partner's feedback, and owns the
    consumer groups `fivecogs-<cog>*`. Partners' dead-letter topics are granted with the partner."""
    who = user(username)
    acls = _topic(who, events_topic(cog), "write", "describe", "create", "describe_configs", "alter_configs")
    acls += _topic(who, f"fivecogs.{cog}.ingest.", "read", "describe", prefixed=True)
    for upstream in UPSTREAM[cog]:
        acls += _topic(who, events_topic(upstream), "read", "describe", "create", "describe_configs")
        acls += _topic(
            who, dlq_topic(events_topic(upstream)), "write", "describe", "create", "describe_configs", "alter_configs"
        )
    acls += _topic(who, "fivecogs.feedback.", "write", "describe", prefixed=True)
    acls += _group(who, f"fivecogs-{cog}", "read", "describe")
    return acls


def operator_acls(username: str) -> list[Acl]:
    """Lag and the ops page: describe and read every fivecogs topic and group; writes nothing."""
    who = user(username)
    acls = _topic(who, "fivecogs.", "describe", "read", "describe_configs", prefixed=True)
    return acls + _group(who, SERVICE_GROUPS, "describe")


def replayer_acls(username: str) -> list[Acl]:
    """`fivecogs dlq replay` reads dead letters and writes them back into ingest topics (that command refuses any
    target but the dead-letter topic's own source topic); `fivecogs replay` moves a stopped service's group."""
    who = user(username)
    acls = _topic(who, "fivecogs.", "read", "describe", prefixed=True)
    for cog in COGS:
        acls += _topic(who, f"fivecogs.{cog}.ingest.", "write", prefixed=True)
    return acls + _group(who, SERVICE_GROUPS, "read", "describe")


def partner_acls(partner: str, cogs: Iterable[str]) -> list[Acl]:
    """A partner writes its own ingest topics and reads only its own feedback, in groups `partner.<id>.*`; each
    consuming service may dead-letter that partner's records."""
    who = user(partner_user(partner))
    acls = _topic(who, feedback_topic(partner), "read", "describe")
    acls += _group(who, f"{partner_user(partner)}.", "read", "describe")
    for cog in cogs:
        acls += _topic(who, ingest_topic(cog, partner), "write", "describe")
        acls += _topic(user(service_username(cog)), dlq_topic(ingest_topic(cog, partner)), "write", "describe")
    return acls


def stack_acls() -> list[Acl]:
    """What `fivecogs stack up` grants (idempotently) to the stack's own principals."""
    acls = [acl for cog in COGS for acl in service_acls(cog, service_username(cog))]
    return acls + operator_acls(OPERATOR) + replayer_acls(REPLAYER)


def partner_topics(partner: str, cogs: Iterable[str]) -> list[str]:
    """The topics that come with a partner: an ingest topic and its dead letters per cog, and its feedback."""
    topics = [feedback_topic(partner)]
    for cog in cogs:
        topics += [ingest_topic(cog, partner), dlq_topic(ingest_topic(cog, partner))]
    return topics


def kafka_acls_arguments(acls: Iterable[Acl]) -> list[str]:
    """The ACLs as `kafka-acls.sh --add` argument lines, one per principal, resource kind, pattern and set of
    operations (what the compose broker applies: deploy/kafka/acls.txt, kept current by a test)."""
    grouped: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
    by_resource: dict[tuple[str, str, str, str], set[str]] = {}
    for acl in acls:
        by_resource.setdefault((acl.principal, acl.resource, acl.pattern, acl.name), set()).add(acl.operation)
    for (principal, resource, pattern, name), ops in by_resource.items():
        grouped.setdefault((principal, resource, pattern, tuple(sorted(ops))), []).append(name)
    lines = []
    for (principal, resource, pattern, operations), names in sorted(grouped.items()):
        words = [f"--allow-principal {principal}", f"--resource-pattern-type {pattern}"]
        words += [f"--operation {''.join(w.capitalize() for w in op.split('_'))}" for op in operations]
        words += [f"--{resource} {name}" for name in sorted(names)]
        lines.append(" ".join(words))
    return lines
