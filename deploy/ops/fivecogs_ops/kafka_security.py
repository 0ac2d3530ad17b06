"""Kafka ACLs and SCRAM credentials for operators: the admin calls aiokafka 0.14 does not have.

aiokafka ships ACL request classes that build a single ACL per request and stop at v1 (its "v2" reuses the v1
layout without the flexible encoding v2 needs), and it has nothing for SCRAM credentials. The requests below are
written out per the Kafka protocol and sent through the admin client's own connection, as
`fivecogs_shared.kafka_admin` does for IncrementalAlterConfigs.

Versions: the ACL calls offer v3 (flexible, the newest Kafka 4.4 has) and v1 (non-flexible, aiokafka's own
layout; the oldest Kafka 4 accepts, as KIP-896 removed v0), and the broker's ApiVersions answer picks the highest
it has: v3 on Kafka 4. The SCRAM calls exist only as v0 (flexible), from KIP-554. Services never need this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest_v1
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactBytes, CompactString, Int8, Int16, Int32, Schema, TaggedFields

log = structlog.get_logger()

ResourceKind = Literal["topic", "group", "cluster", "transactional_id"]
Operation = Literal[
    "all",
    "read",
    "write",
    "create",
    "delete",
    "alter",
    "describe",
    "cluster_action",
    "describe_configs",
    "alter_configs",
    "idempotent_write",
]
PatternKind = Literal["literal", "prefixed"]
PatternFilter = Literal["literal", "prefixed", "any", "match"]
Permission = Literal["allow", "deny"]

CLUSTER = "kafka-cluster"  # the one name a cluster resource has

# The protocol's enum codes (org.apache.kafka.common.resource / acl); 1 is ANY in each filter.
_ANY = 1
_RESOURCE: dict[ResourceKind, int] = {"topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
_PATTERN: dict[PatternFilter, int] = {"any": 1, "match": 2, "literal": 3, "prefixed": 4}
_OPERATION: dict[Operation, int] = {name: code for code, name in enumerate(get_args(Operation), start=2)}
_PERMISSION: dict[Permission, int] = {"deny": 2, "allow": 3}
_SCRAM_SHA_512 = 2
# Back from codes to names; a code missing here is outside Acl's vocabulary (KeyError).
_RESOURCE_NAMES = {code: name for name, code in _RESOURCE.items()}
_PATTERN_NAMES: dict[int, PatternKind] = {3: "literal", 4: "prefixed"}
_OPERATION_NAMES = {code: name for name, code in _OPERATION.items()}
_PERMISSION_NAMES = {code: name for name, code in _PERMISSION.items()}


@dataclass(frozen=True, order=True)
class Acl:
    principal: str  # "User:service-inputs"
    resource: ResourceKind
    name: str  # topic/group name or prefix; CLUSTER for the cluster
    operation: Operation
    pattern: PatternKind = "literal"
    permission: Permission = "allow"
    host: str = "*"

    def _wire(self) -> tuple[int, str, int, str, str, int, int]:
        """The fields in the order every ACL request and response lays them out."""
        return (
            _RESOURCE[self.resource],
            self.name,
            _PATTERN[self.pattern],
            self.principal,
            self.host,
            _OPERATION[self.operation],
            _PERMISSION[self.permission],
        )

    def __str__(self) -> str:
        return (
            f"{self.permission} {self.principal} {self.operation} on {self.pattern} {self.resource} "
            f"{self.name!r} from {self.host}"
        )


# -- errors ------------------------------------------------------------------------------------------------
SECURITY_DISABLED = 54
CLUSTER_AUTHORIZATION_FAILED = 31
RESOURCE_NOT_FOUND = 91
# Codes newer than aiokafka's error table, named so that messages say more than UNKNOWN.
_NAMES = {91: "RESOURCE_NOT_FOUND", 92: "DUPLICATE_RESOURCE", 93: "UNACCEPTABLE_CREDENTIAL"}
_NEEDS = re.compile(r"needs \w+ permission")
_HINTS = {
    SECURITY_DISABLED: "the broker has no authorizer (authorizer.class.name is unset), so it keeps no ACLs",
    CLUSTER_AUTHORIZATION_FAILED: (
        "the connected principal lacks that right on the cluster; manage ACLs and SCRAM users as a principal in "
        "super.users or one allowed ALTER (DESCRIBE to read) on the cluster"
    ),
}


def _explain(code: int, message: str | None) -> str:
    """'error 31 CLUSTER_AUTHORIZATION_FAILED (the broker's message; what it means here)'."""
    said = "; ".join(part for part in (_tidy(message), _HINTS.get(code)) if part)
    name = _NAMES.get(code) or for_code(code).message
    return f"error {code} {name}" + (f" ({said})" if said else "")


def _tidy(message: str | None) -> str | None:
    """A refusal forwarded to the controller reads "Request Request(<a Java dump>) needs ALTER permission.":
    keep the part that says something."""
    found = _NEEDS.search(message or "")
    return found.group(0) if found and message and message.startswith("Request Request(") else message


def _raise_for(code: int, message: str | None, doing: str) -> None:
    if code:
        raise for_code(code)(f"{doing}: {_explain(code, message)}")


async def _send(admin: AIOKafkaAdminClient, request: Request[Any], timeout: float) -> dict[str, Any]:
    response = await asyncio.wait_for(admin._send_request(request), timeout)
    answer: dict[str, Any] = response.to_object()
    return answer


# -- ACL requests ------------------------------------------------------------------------------------------
# v3 has v1's fields with the flexible encoding: compact strings and arrays, and a tag buffer closing every
# struct. The field names follow aiokafka's v1 classes so that one decoder reads both answers.
_ACL_FIELDS = (
    ("resource_type", Int8),
    ("resource_name", CompactString("utf-8")),
    ("resource_pattern_type", Int8),
    ("principal", CompactString("utf-8")),
    ("host", CompactString("utf-8")),
    ("operation", Int8),
    ("permission_type", Int8),
)
_FILTER_FIELDS = tuple(
    ("resource_pattern_type_filter", kind) if name == "resource_pattern_type" else (name, kind)
    for name, kind in _ACL_FIELDS
)
_TAGS = ("tags", TaggedFields)


class _CreateAclsResponseV3(Response):  # type: ignore[misc]
    API_KEY = 30
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "creation_responses",
            CompactArray(("error_code", Int16), ("error_message", CompactString("utf-8")), _TAGS),
        ),
        _TAGS,
    )


class _CreateAclsRequestV3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 30
    API_VERSION = 3
    RESPONSE_TYPE = _CreateAclsResponseV3
    SCHEMA = Schema(("creations", CompactArray(*_ACL_FIELDS, _TAGS)), _TAGS)


class _DescribeAclsResponseV3(Response):  # type: ignore[misc]
    API_KEY = 29
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "resources",
            CompactArray(
                ("resource_type", Int8),
                ("resource_name", CompactString("utf-8")),
                ("resource_pattern_type", Int8),
                (
                    "acls",
                    CompactArray(
                        ("principal", CompactString("utf-8")),
                        ("host", CompactString("utf-8")),
                        ("operation", Int8),
                        ("permission_type", Int8),
                        _TAGS,
                    ),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DescribeAclsRequestV3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 29
    API_VERSION = 3
    RESPONSE_TYPE = _DescribeAclsResponseV3
    SCHEMA = Schema(*_FILTER_FIELDS, _TAGS)


class _DeleteAclsResponseV3(Response):  # type: ignore[misc]
    API_KEY = 31
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "filter_responses",
            CompactArray(
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "matching_acls",
                    CompactArray(("error_code", Int16), ("error_message", CompactString("utf-8")), *_ACL_FIELDS, _TAGS),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DeleteAclsRequestV3(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 31
    API_VERSION = 3
    RESPONSE_TYPE = _DeleteAclsResponseV3
    SCHEMA = Schema(("filters", CompactArray(*_FILTER_FIELDS, _TAGS)), _TAGS)


def _rows(struct: type[RequestStruct], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Flexible versions close each struct with an (empty) tag buffer, the request's own too (`_top`)."""
    return [(*row, {}) for row in rows] if struct.FLEXIBLE_VERSION else rows


def _top(struct: type[RequestStruct], *fields: Any) -> Any:
    return struct(*_rows(struct, [fields])[0])


class _CreateAcls(Request[CreateAclsRequest_v1 | _CreateAclsRequestV3]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: Any) -> Any:
        return _top(request_struct_class, _rows(request_struct_class, [acl._wire() for acl in self.acls]))


class _DescribeAcls(Request[DescribeAclsRequest_v1 | _DescribeAclsRequestV3]):  # type: ignore[misc]
    API_KEY = 29

    def __init__(self, acl_filter: tuple[Any, ...]) -> None:
        self.acl_filter = acl_filter

    def build(self, request_struct_class: Any) -> Any:
        return _top(request_struct_class, *self.acl_filter)


class _DeleteAcls(Request[DeleteAclsRequest_v1 | _DeleteAclsRequestV3]):  # type: ignore[misc]
    API_KEY = 31

    def __init__(self, filters: list[tuple[Any, ...]]) -> None:
        self.filters = filters

    def build(self, request_struct_class: Any) -> Any:
        return _top(request_struct_class, _rows(request_struct_class, self.filters))


# -- ACL calls ---------------------------------------------------------------------------------------------
async def create_acls(admin: AIOKafkaAdminClient, acls: Iterable[Acl], timeout: float = 10.0) -> None:
    """Add the ACLs in one request. An ACL that exists already is no error, so a rerun after a failure is safe;
    on any refusal this raises, naming every refused ACL (the others are in place)."""
    wanted = list(acls)
    if not wanted:
        return
    answer = await _send(admin, _CreateAcls(wanted), timeout)
    refused = [(acl, r) for acl, r in zip(wanted, answer["creation_responses"], strict=True) if r["error_code"]]
    if refused:
        why = "; ".join(f"{acl}: {_explain(r['error_code'], r['error_message'])}" for acl, r in refused)
        raise for_code(refused[0][1]["error_code"])(f"creating ACLs: {len(refused)} of {len(wanted)} refused: {why}")


async def describe_acls(
    admin: AIOKafkaAdminClient,
    *,
    principal: str | None = None,
    resource: ResourceKind | None = None,
    name: str | None = None,
    pattern: PatternFilter = "any",
    timeout: float = 10.0,
) -> list[Acl]:
    """The ACLs matching the filter, sorted; None matches anything. `pattern="match"` needs a `name` and also
    finds the prefixed and wildcard ACLs that apply to it."""
    acl_filter = (
        _RESOURCE[resource] if resource else _ANY,
        name,
        _PATTERN[pattern],
        principal,
        None,  # any host
        _ANY,  # any operation
        _ANY,  # any permission
    )
    answer = await _send(admin, _DescribeAcls(acl_filter), timeout)
    _raise_for(answer["error_code"], answer["error_message"], "describing ACLs")
    found = [
        _acl(res["resource_type"], res["resource_name"], res["resource_pattern_type"], acl)
        for res in answer["resources"]
        for acl in res["acls"]
    ]
    return sorted(acl for acl in found if acl is not None)


async def delete_acls(admin: AIOKafkaAdminClient, acls_or_filters: Iterable[Acl], timeout: float = 10.0) -> list[Acl]:
    """Remove the ACLs, each matched exactly, and return those the broker deleted (sorted); one that does not
    exist is not an error. To clear a principal: `delete_acls(admin, await describe_acls(admin, principal=p))`."""
    wanted = list(acls_or_filters)
    if not wanted:
        return []
    answer = await _send(admin, _DeleteAcls([acl._wire() for acl in wanted]), timeout)
    deleted: list[Acl] = []
    for acl, result in zip(wanted, answer["filter_responses"], strict=True):
        _raise_for(result["error_code"], result["error_message"], f"deleting {acl}")
        for match in result["matching_acls"]:
            _raise_for(match["error_code"], match["error_message"], f"deleting {acl}")
            found = _acl(match["resource_type"], match["resource_name"], match["resource_pattern_type"], match)
            if found:
                deleted.append(found)
    return sorted(set(deleted))


def _acl(resource_type: int, name: str, pattern_type: int, entry: dict[str, Any]) -> Acl | None:
    """The Acl for a broker's answer; None, with a warning, for one outside Acl's vocabulary (e.g. an ACL on a
    delegation token or user resource another tool made)."""
    try:
        return Acl(
            principal=entry["principal"],
            resource=_RESOURCE_NAMES[resource_type],
            name=name,
            operation=_OPERATION_NAMES[entry["operation"]],
            pattern=_PATTERN_NAMES[pattern_type],
            permission=_PERMISSION_NAMES[entry["permission_type"]],
            host=entry["host"],
        )
    except KeyError:
        log.warning("ACL not expressible as an Acl, left out", resource_type=resource_type, name=name, **entry)
        return None


# -- SCRAM credentials (KIP-554): both requests exist only in v0, which is flexible --------------------------
class _AlterScramResponseV0(Response):  # type: ignore[misc]
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _AlterScramRequestV0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponseV0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), _TAGS)),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _AlterScram(Request[_AlterScramRequestV0]):  # type: ignore[misc]
    API_KEY = 51

    def __init__(self, deletions: list[tuple[str, int]], upsertions: list[tuple[str, int, int, bytes, bytes]]) -> None:
        self.deletions = deletions
        self.upsertions = upsertions

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class([(*row, {}) for row in self.deletions], [(*row, {}) for row in self.upsertions], {})


class _DescribeScramResponseV0(Response):  # type: ignore[misc]
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), _TAGS)),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DescribeScramRequestV0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeScramResponseV0
    SCHEMA = Schema(("users", CompactArray(("name", CompactString("utf-8")), _TAGS)), _TAGS)


class _DescribeScram(Request[_DescribeScramRequestV0]):  # type: ignore[misc]
    API_KEY = 50

    def __init__(self, users: list[str]) -> None:
        self.users = users  # empty: every user

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class([(user, {}) for user in self.users], {})


# -- SCRAM calls -------------------------------------------------------------------------------------------
async def set_scram_password(
    admin: AIOKafkaAdminClient, user: str, password: str, *, iterations: int = 8192, timeout: float = 10.0
) -> None:
    """Create the user's SCRAM-SHA-512 credential or replace it (a rotation). Only the salted password leaves
    this process, as KIP-554 intends. Open connections stay authenticated until they reconnect or re-authenticate
    (connections.max.reauth.ms)."""
    if not user or not password:
        raise ValueError("a SCRAM user needs a non-empty name and password")
    salt = os.urandom(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)  # SCRAM's Hi(), RFC 5802
    await _alter_scram(admin, _AlterScram([], [(user, _SCRAM_SHA_512, iterations, salt, salted)]), timeout)


async def delete_scram_user(admin: AIOKafkaAdminClient, user: str, timeout: float = 10.0) -> None:
    """Remove every SCRAM credential of the user; a user without any is no error. Like a rotation, this does not
    close the user's open connections."""
    mechanisms = (await _scram_credentials(admin, [user], timeout)).get(user, [])
    if mechanisms:
        await _alter_scram(admin, _AlterScram([(user, m) for m in mechanisms], []), timeout)


async def scram_users(admin: AIOKafkaAdminClient, timeout: float = 10.0) -> list[str]:
    """Every user with a SCRAM credential, sorted."""
    # An empty list asks for all, as null does; null would leave a refused caller without any answer, because
    # the broker's error path iterates the user list (DescribeUserScramCredentialsRequest.getErrorResponse).
    return sorted(await _scram_credentials(admin, [], timeout))


async def _alter_scram(admin: AIOKafkaAdminClient, request: _AlterScram, timeout: float) -> None:
    answer = await _send(admin, request, timeout)
    for result in answer["results"]:
        # A deletion racing another one finds nothing left to delete: the wanted end state.
        if result["error_code"] != RESOURCE_NOT_FOUND or request.upsertions:
            _raise_for(result["error_code"], result["error_message"], f"altering SCRAM user {result['user']!r}")


async def _scram_credentials(admin: AIOKafkaAdminClient, users: list[str], timeout: float) -> dict[str, list[int]]:
    """Mechanism codes per user that has any; asking for a user without credentials is no error."""
    answer = await _send(admin, _DescribeScram(users), timeout)
    _raise_for(answer["error_code"], answer["error_message"], "describing SCRAM users")
    found: dict[str, list[int]] = {}
    for result in answer["results"]:
        if result["error_code"] == RESOURCE_NOT_FOUND:
            continue
        _raise_for(result["error_code"], result["error_message"], f"describing SCRAM user {result['user']!r}")
        found[result["user"]] = [info["mechanism"] for info in result["credential_infos"]]
    return found
