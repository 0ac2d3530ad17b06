"""docs/partners.md against the code, without a stack: every code block is marked and checked, the JSON bodies
validate against the contract models and the published JSON Schemas, the tables say what the code does, and the
links lead somewhere. The examples that talk to Kafka and HTTP run in tests/integration/test_partner_guide.py."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import os
import runpy
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fivecogs_shared.contracts import FEEDBACK_EVENT_TYPES, PARTNER_EVENT_TYPES, feedback_topic, ingest_topic
from fivecogs_shared.contracts.topics import partner_of_topic, source_belongs_to
from fivecogs_shared.envelope import read_event
from fivecogs_shared.errors import BadRecord
from fivecogs_shared.kafka_access import KafkaAccess
from tests import partner_guide as guide

REPO = Path(__file__).resolve().parents[2]


# --- every block is an example some test checks ---------------------------------------------------------


def test_every_code_block_in_the_partner_guide_says_what_it_is() -> None:
    for example in guide.examples():
        assert example.kind in guide.KINDS, f"{example}: mark it <!-- example: <kind> --> (tests/partner_guide.py)"
        assert example.language == guide.KINDS[example.kind], f"{example}: a {example.kind} block is {example.language}"


def test_the_markers_are_read_as_they_are_meant() -> None:
    text = "# t\n\n<!-- example: event th.x.v1 -->\n```json\n{}\n```\n\n```sh\necho\n```\n"
    marked, unmarked = guide.examples(text)
    assert (marked.kind, marked.argument, marked.language, marked.code) == ("event", "th.x.v1", "json", "{}\n")
    assert marked.line == 4
    assert (unmarked.kind, unmarked.language, unmarked.code) == ("", "sh", "echo\n")


def test_each_kind_that_is_one_of_a_kind_appears_once() -> None:
    for kind in ("settings", "client-module", "webhook-verify", "feedback-consumer", "publish", "console-producer"):
        assert len(guide.of_kind(kind)) == 1, kind
    names = [example.argument for example in guide.of_kind("api")]
    assert sorted(names) == sorted(example.argument for example in guide.of_kind("api-response")), names
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("example", [e for e in guide.examples() if e.language == "python"], ids=str)
def test_every_python_example_compiles(example: guide.Example) -> None:
    compile(example.code, str(example), "exec")


# --- event bodies --------------------------------------------------------------------------------------

EVENTS = guide.of_kind("event")


def test_every_partner_type_has_exactly_one_example_in_its_own_section() -> None:
    assert sorted(example.argument for example in EVENTS) == sorted(PARTNER_EVENT_TYPES)
    for example in EVENTS:
        assert example.section.startswith(f"`{example.argument}`"), f"{example} is under {example.section!r}"


@pytest.mark.parametrize("example", EVENTS, ids=str)
def test_each_event_example_is_valid_by_the_model_and_the_published_schema(example: guide.Example) -> None:
    PARTNER_EVENT_TYPES[example.argument].model.model_validate_json(example.code)
    assert guide.schema_errors(example.json(), guide.published_schema(example.argument)) == []


@pytest.mark.parametrize("example", EVENTS, ids=str)
def test_the_published_schema_refuses_what_the_model_refuses(example: guide.Example) -> None:
    """The schema check bites: an unknown field, a missing required field and a wrong type all fail."""
    schema, body = guide.published_schema(example.argument), example.json()
    assert guide.schema_errors(body | {"unexpected": 1}, schema)
    key = PARTNER_EVENT_TYPES[example.argument].key_field
    assert guide.schema_errors({k: v for k, v in body.items() if k != key}, schema)
    assert guide.schema_errors(body | {key: 17}, schema)


FEEDBACK = guide.of_kind("feedback")


def test_every_feedback_type_has_an_example() -> None:
    assert sorted(example.argument for example in FEEDBACK) == sorted(FEEDBACK_EVENT_TYPES)


@pytest.mark.parametrize("example", FEEDBACK, ids=str)
def test_each_feedback_example_is_valid_by_the_model_and_the_published_schema(example: guide.Example) -> None:
    FEEDBACK_EVENT_TYPES[example.argument].model.model_validate_json(example.code)
    assert guide.schema_errors(example.json(), guide.published_schema(example.argument)) == []


def test_the_rejection_example_is_what_fivecogs_says_of_a_float_price() -> None:
    rejected = guide.one("feedback", "th.fivecogs.partner.event.rejected.v1").json()
    order = guide.one("event", rejected["event_type"]).json()
    order["lines"][0]["unit_price_thb"] = 120.0
    record = _record("fivecogs.marketing.ingest.p", order["order_id"], order, rejected["event_type"])
    with pytest.raises(BadRecord) as bad:
        read_event(record, PARTNER_EVENT_TYPES, 1 << 18)
    assert (bad.value.kind, bad.value.detail) == (rejected["reason"], rejected["detail"])


# --- connecting ----------------------------------------------------------------------------------------


def test_the_settings_example_is_what_partners_add_prints() -> None:
    from fivecogs_ops.partners import PartnerAccess

    shown = guide.one("settings").json()
    client = shown["client"]
    access = KafkaAccess(
        client["bootstrap_servers"],
        client["security_protocol"],
        client["sasl_plain_username"],
        client["sasl_plain_password"],
    )
    given = PartnerAccess(shown["partner"], tuple(shown["writes"]), access)
    assert given.summary() == shown


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_the_client_module_turns_the_settings_into_aiokafka_arguments(protocol: str, tmp_path, monkeypatch) -> None:
    shown = guide.one("settings").json()
    shown["client"]["security_protocol"] = protocol
    (tmp_path / "given.json").write_text(json.dumps(shown))
    monkeypatch.setenv("FIVECOGS_PARTNER_SETTINGS", str(tmp_path / "given.json"))

    module = runpy.run_path(_saved(tmp_path, "client-module", "fivecogs_client.py"))

    assert (module["PARTNER_ID"], module["SOURCE"]) == (shown["partner"], shown["ce_source"])
    assert source_belongs_to(module["SOURCE"], module["PARTNER_ID"])
    assert ("ssl_context" in module["SETTINGS"]) == (protocol == "SASL_SSL")

    async def construct() -> None:  # aiokafka checks its arguments here, and connects only at start()
        AIOKafkaProducer(**module["SETTINGS"], enable_idempotence=True, acks="all")
        AIOKafkaConsumer(
            feedback_topic(module["PARTNER_ID"]), **module["SETTINGS"], group_id="g", auto_offset_reset="earliest"
        )

    asyncio.run(construct())


def test_the_topics_of_the_settings_are_the_partners_own() -> None:
    shown = guide.one("settings").json()
    partner = shown["partner"]
    assert shown["writes"] == {cog: ingest_topic(cog, partner) for cog in shown["writes"]}
    assert shown["reads"] == feedback_topic(partner)
    assert all(partner_of_topic(topic) == partner for topic in shown["writes"].values())


# --- the console producer ------------------------------------------------------------------------------


def test_the_console_producers_record_is_a_valid_event_on_its_topic() -> None:
    sent = guide.console_record(guide.one("console-producer"))
    settings = guide.one("settings").json()

    event = read_event(_Record(sent.topic, sent.key.encode(), sent.value, sent.headers), PARTNER_EVENT_TYPES, 1 << 18)

    partner = partner_of_topic(sent.topic)
    assert partner is not None
    assert partner == settings["partner"]
    assert source_belongs_to(event.source, partner)
    assert sent.topic == ingest_topic(PARTNER_EVENT_TYPES[event.type].cog, partner)
    assert event.data.model_dump(mode="json", exclude_defaults=True) == guide.one("event", event.type).json()
    assert sent.properties["security.protocol"] == settings["client"]["security_protocol"]
    assert sent.properties["sasl.mechanism"] == settings["client"]["sasl_mechanism"]
    assert f'username="{settings["client"]["sasl_plain_username"]}"' in sent.properties["sasl.jaas.config"]


# --- webhooks ------------------------------------------------------------------------------------------


def test_the_webhook_example_verifies_a_signed_notice_and_refuses_a_forged_one(tmp_path, monkeypatch) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    monkeypatch.setenv("FIVECOGS_WEBHOOK_SECRET", secret)
    verified_notice = runpy.run_path(_saved(tmp_path, "webhook-verify", "hook.py"))["verified_notice"]
    body = json.dumps({"notice_id": "n-1", "summary": "A sale was paid"}).encode()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "n-1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("n-1", now, body.decode()),
    }

    assert verified_notice(body, headers) == {"notice_id": "n-1", "summary": "A sale was paid"}
    with pytest.raises(WebhookVerificationError):
        verified_notice(body.replace(b"paid", b"PAID"), headers)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with pytest.raises(WebhookVerificationError):
        verified_notice(body, headers | {"webhook-signature": Webhook(other).sign("n-1", now, body.decode())})


# --- the tables say what the code does ----------------------------------------------------------------


def test_the_event_type_table_is_the_registry() -> None:
    rows = guide.table("5. Event types", "ce_type")
    assert {row["ce_type"]: (row["topic (.<your-id> appended)"], row["key"]) for row in rows} == {
        ce_type: (f"fivecogs.{event.cog}.ingest", event.key_field) for ce_type, event in PARTNER_EVENT_TYPES.items()
    }


def _rules_in_the_code() -> tuple[set[str], set[str]]:
    """Every rule the services' domains raise, and those that hold the event first (`Awaiting`)."""
    rules: set[str] = set()
    held: set[str] = set()
    for path in (REPO / "services").glob("*/fivecogs_*/**/*.py"):
        tree = ast.parse(path.read_text())
        constants = {  # module-level NAME = "text", for a rule raised by its constant's name
            target.id: str(node.value.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name not in ("RuleViolation", "Awaiting"):
                continue
            first = node.args[0]  # "rule", RULE, or destinations.RULE (a constant of the package)
            name_of = getattr(first, "id", getattr(first, "attr", ""))
            if isinstance(first, ast.Constant):
                rule = str(first.value)
            else:
                rule = constants.get(name_of) or _package_constant(path, name_of)
            rules.add(f"rule:{rule}")
            if name == "Awaiting":
                held.add(f"rule:{rule}")
    return rules, held


def _package_constant(path: Path, name: str) -> str:
    for module in path.parent.glob("*.py"):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
                assert isinstance(node.value, ast.Constant), f"{module}: {name}"
                return str(node.value.value)
    raise AssertionError(f"{path}: a rule raised by {name}, a constant not found beside it")


READ_KINDS = {"malformed", "schema", "unknown_type", "conflict", "oversized", "unauthorized_source", "processing_error"}


def test_the_rejection_reasons_are_those_of_the_code_and_the_held_ones_are_marked() -> None:
    rows = guide.table("9. Rejection reasons", "reason")
    rules, held = _rules_in_the_code()
    assert len(rules) > 20  # the scan found the domains' rules
    assert held
    assert [row["reason"] for row in rows] == list(dict.fromkeys(row["reason"] for row in rows))  # no repeats
    assert {row["reason"] for row in rows} == READ_KINDS | rules
    assert {row["reason"] for row in rows if row["held first"] == "yes"} == held
    assert {row["held first"] for row in rows} == {"yes", ""}


def test_what_held_events_await_is_what_the_domains_name() -> None:
    from fivecogs_inputs import domain as inputs
    from fivecogs_knowledge import domain as knowledge
    from fivecogs_marketing.domain import listing, orders

    enterprise, product, batch = "<enterprise_id>", "<product_id>", "<batch_id>"
    named = {
        inputs.enterprise_ref(enterprise),
        knowledge.enterprise_ref(enterprise),
        listing.enterprise_ref(enterprise),
        inputs.delivery_ref(batch, "<delivery_id>"),
        knowledge.product_ref(enterprise, product),
        listing.product_ref(enterprise, product),
        listing.certification_ref(product),
        orders.stock_ref(product),
        listing.listing_ref("<channel>", product),
        orders.order_ref("<order_id>"),
    }
    assert {row["awaits"] for row in guide.table("The wait: held events", "awaits")} == named


def test_the_feedback_type_table_is_the_registry() -> None:
    assert {row["ce_type"] for row in guide.table("8. Feedback", "ce_type")} == set(FEEDBACK_EVENT_TYPES)


def test_the_default_wait_is_the_one_the_guide_states() -> None:
    from fivecogs_shared.settings import DEFAULT_HOLD_SECONDS, load_settings

    assert DEFAULT_HOLD_SECONDS == 5 * 60
    assert "**5 minutes** by default" in guide.GUIDE.read_text(encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if "HOLD_SECONDS" not in k}
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(environ):
            patch.delenv(name)
        assert load_settings("marketing").hold_seconds == DEFAULT_HOLD_SECONDS
        patch.setenv("FIVECOGS_HOLD_SECONDS", "60")
        patch.setenv("FIVECOGS_MARKETING_HOLD_SECONDS", "90")
        assert (load_settings("inputs").hold_seconds, load_settings("marketing").hold_seconds) == (60, 90)


# --- links ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["partners.md", "rules.md", "operations.md"])
def test_every_link_of_the_guide_rules_and_operations_leads_somewhere(doc: str) -> None:
    path = guide.DOCS / doc
    for target in guide.links(path):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = guide.DOCS / file if file else path
        assert linked.is_file(), f"{doc}: {target} names no file"
        if anchor:
            assert anchor in guide.anchors(linked), f"{doc}: {target} names no heading of {linked.name}"


def test_the_guide_links_the_rules() -> None:
    assert "rules.md" in {target.partition("#")[0] for target in guide.links(guide.GUIDE)}


# --- helpers -------------------------------------------------------------------------------------------


class _Record:
    partition, offset = 0, 0

    def __init__(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.topic, self.key, self.value, self.headers = topic, key, value, headers


def _record(topic: str, key: str, data: dict[str, Any], ce_type: str) -> _Record:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"partner/p"),
        ("ce_type", ce_type.encode()),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return _Record(topic, key.encode(), json.dumps(data).encode(), headers)


def _saved(folder: Path, kind: str, name: str) -> str:
    """The example written to a file, as a partner saves it (the others import fivecogs_client from beside them)."""
    path = folder / name
    path.write_text(guide.one(kind).code)
    return str(path)
