"""Records a careless or confused partner sends: broken CloudEvents headers, values that are not JSON or do not
match their contract, wrong keys, retries and reused ids. Each is meant to fail in exactly one way."""

from __future__ import annotations

import json
from typing import Any

from fivecogs_ops.simulate import catalogue
from fivecogs_ops.simulate.records import Sent, with_headers, with_value
from fivecogs_ops.simulate.story import Story, at, day_of

REGISTERED = "th.fivecogs.enterprise.registered.v1"
POLICY = "th.fivecogs.distribution.policy.set.v1"
SUBSCRIPTION = "th.fivecogs.subscription.created.v1"
WHEN = at(day_of(1, 8), 11)


def registrations(story: Story) -> None:
    """Bad registrations on fivecogs.inputs.ingest; none of them may register anybody."""
    ghost = _ghost(story, "target_poor_households above members", members=5, target_poor_households=9)
    story.cast.ghost_enterprise = ghost["enterprise_id"]
    _schema(story, ghost, "households cannot exceed members")
    _schema(story, _ghost(story, "Buriram", province="Buriram"), "a misspelt province")
    misspelt = _ghost(story, "misspelt field")
    misspelt["memebers"] = misspelt.pop("members")
    _schema(story, misspelt, "a misspelt field name")
    wrong_key = _build(story, _ghost(story, "wrong key"))
    story.writer.add(with_value(wrong_key, wrong_key.value, "schema", "the key is not the enterprise id", b"ent-x"))
    _broken_headers(story)
    _repeats(story)


def _broken_headers(story: Story) -> None:
    def broken(changes: dict[str, bytes | None], intent: str, note: str) -> None:
        story.writer.add(with_headers(_build(story, _ghost(story, note)), changes, intent, note))

    broken({"ce_id": None}, "malformed", "no ce_id header")
    broken({"ce_source": None}, "malformed", "no ce_source header")
    broken({"ce_time": b"2025-01-08T11:00:00"}, "malformed", "ce_time without an offset")
    broken({"ce_specversion": b"0.3"}, "malformed", "CloudEvents 0.3")
    broken({"content-type": b"text/plain"}, "malformed", "not a JSON content type")
    broken({"ce_id": (story.tag + "-" + "x" * 200).encode()}, "malformed", "ce_id over 200 bytes")
    broken({"ce_type": b"th.fivecogs.enterprise.deleted.v1"}, "unknown_type", "a type nobody defined")
    broken({"ce_type": b"th.fivecogs.listing.requested.v1"}, "unknown_type", "a marketing type on the inputs topic")
    # On the sender's own topic, in another partner's name: refused, and only the sender is told.
    claimed = catalogue.pracharat_company("Phetchaburi").encode()
    broken({"ce_source": claimed}, "unauthorized_source", "a registration in another partner's name")
    not_json = _build(story, _ghost(story, "not JSON"))
    story.writer.add(with_value(not_json, not_json.value[:-9], "malformed", "the value is cut short: not JSON"))


def _repeats(story: Story) -> None:
    registered = [s for s in story.writer.written if s.ce_type == REGISTERED and s.intent == "accepted"]
    story.again(registered[0], "duplicate", "the same registration again: a retry")
    original = registered[-1]
    changed = {**original.data(), "members": original.data()["members"] + 1}
    conflict = with_value(original, json.dumps(changed).encode(), "conflict", "an event id reused for other data")
    story.writer.add(conflict)


def policies_and_subscriptions(story: Story) -> None:
    province = "Nan"
    source = catalogue.cdd_office(province)
    short = {"province": province, "members_share": "0.50", "community_fund_share": "0.40", "reinvest_share": "0.09"}
    story.event(POLICY, short, source=source, time=WHEN, intent="schema", note="shares summing to 0.99")
    floats = {"province": province, "members_share": 0.6, "community_fund_share": 0.3, "reinvest_share": 0.1}
    story.event(POLICY, floats, source=source, time=WHEN, intent="schema", note="shares as JSON numbers")
    weather = {"subscriber_id": f"{story.tag}-sub-bad", "network": "media", "topics": ["weather"]}
    desk = catalogue.NETWORK_DESK
    story.event(SUBSCRIPTION, weather, source=desk, time=WHEN, intent="schema", note="an unknown notice topic")
    subscription = story.writer.build(SUBSCRIPTION, weather, source=desk, time=WHEN)
    story.writer.add(
        with_headers(subscription, {"ce_type": POLICY.encode()}, "unknown_type", "a policy on the wrong topic")
    )
    first = next(s for s in story.writer.written if s.ce_type == SUBSCRIPTION and s.intent == "accepted")
    story.again(first, "duplicate", "the same subscription again")
    _unsafe_subscriptions(story, first.data())


def _unsafe_subscriptions(story: Story, taken: dict[str, Any]) -> None:
    """Subscriptions that would let a partner reach inside or take over another's notices; none may change
    anything. Only literal addresses: a name would be resolved by the service (and `fivecogs run` allows
    loopback, for local receivers)."""
    other = catalogue.cdd_office("Nan")  # a partner other than the network desk that owns the subscribers
    takeover = {**taken, "topics": ["sale"], "provinces": ["Nan"]}
    story.event(SUBSCRIPTION, takeover, source=other, time=WHEN, intent="rule:subscription_owned", note="takeover")
    base = {"network": "media", "topics": ["sale"]}
    for name, url, note in (
        ("metadata", "http://169.254.169.254/latest/meta-data/", "a webhook to the cloud metadata service"),
        ("private", "http://10.0.0.1:8080/hook", "a webhook to a private address"),
        ("userinfo", "https://user:secret@93.184.216.34/hook", "a webhook URL with credentials"),
    ):
        data = {**base, "subscriber_id": f"{story.tag}-sub-{name}", "webhook_url": url}
        story.event(SUBSCRIPTION, data, source=other, time=WHEN, intent="rule:webhook_destination", note=note)


def _ghost(story: Story, note: str, **changes: Any) -> dict[str, Any]:
    """A registration of an enterprise that should never come to exist."""
    data: dict[str, Any] = {
        "enterprise_id": story.new_id("ent-ghost-", width=2),
        "name": f"Ban Nong Khai {note} group",
        "province": "Nakhon Ratchasima",
        "sector": "processing",
        "members": 10,
        "target_poor_households": 3,
    }
    return {**data, **changes}


def _build(story: Story, data: dict[str, Any]) -> Sent:
    return story.writer.build(REGISTERED, data, source=catalogue.cdd_office("Nakhon Ratchasima"), time=WHEN)


def _schema(story: Story, data: dict[str, Any], note: str) -> None:
    story.writer.add(with_value(_build(story, data), json.dumps(data).encode(), "schema", note))
