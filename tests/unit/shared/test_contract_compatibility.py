"""Published contracts stay compatible: partners (and old events in the log) keep working after a change."""

from __future__ import annotations

import copy

from fivecogs_shared.contracts.published import (
    Schema,
    breaking_changes,
    current_schemas,
    current_topology,
    published_schemas,
    published_topologies,
    topology_changes,
)


def test_every_event_type_is_published_and_unchanged() -> None:
    published, current = published_schemas(), current_schemas()
    assert breaking_changes(published, current) == []
    unpublished = sorted(set(current) - set(published))
    changed = sorted(t for t in published if t in current and published[t] != current[t])
    # A compatible change is published deliberately: `fivecogs contracts export`, then commit the files.
    assert unpublished == [], f"not yet published: {unpublished}"
    assert changed == [], f"changed compatibly but not re-published: {changed}"


def _registered() -> dict[str, Schema]:
    return copy.deepcopy(current_schemas())


def test_removing_a_field_is_breaking() -> None:
    old, new = _registered(), _registered()
    del new["th.fivecogs.enterprise.registered.v1"]["properties"]["members"]
    assert breaking_changes(old, new) == ["th.fivecogs.enterprise.registered.v1: field members was removed"]


def test_a_new_required_field_is_breaking_and_a_new_optional_one_is_not() -> None:
    old = _registered()
    optional = _registered()
    optional["th.fivecogs.batch.produced.v1"]["properties"]["lot"] = {"type": "string"}
    assert breaking_changes(old, optional) == []
    required = copy.deepcopy(optional)
    required["th.fivecogs.batch.produced.v1"]["required"].append("lot")
    assert breaking_changes(old, required) == ["th.fivecogs.batch.produced.v1: field lot became required"]


def test_narrowing_an_enum_is_breaking_and_widening_is_not() -> None:
    old = {"t.v1": {"properties": {"channel": {"enum": ["a", "b"]}}}}
    wider = {"t.v1": {"properties": {"channel": {"enum": ["a", "b", "c"]}}}}
    narrower = {"t.v1": {"properties": {"channel": {"enum": ["a"]}}}}
    assert breaking_changes(old, wider) == []
    assert len(breaking_changes(old, narrower)) == 1


def test_a_nested_model_change_is_found_through_refs() -> None:
    old: dict[str, Schema] = {
        "t.v1": {
            "$defs": {"Line": {"properties": {"qty": {"type": "integer"}}}},
            "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}},
        }
    }
    new = copy.deepcopy(old)
    new["t.v1"]["$defs"]["Line"]["properties"]["qty"] = {"type": "string"}
    [problem] = breaking_changes(old, new)
    assert "lines[].qty changed type" in problem


def test_dropping_a_published_type_is_breaking() -> None:
    old = _registered()
    new = {t: s for t, s in old.items() if t != "th.fivecogs.order.placed.v1"}
    assert breaking_changes(old, new) == ["th.fivecogs.order.placed.v1: the published type is gone"]


def test_the_partner_topics_are_those_of_the_published_contract_version() -> None:
    assert topology_changes(published_topologies(), current_topology()) == []
    assert set(published_topologies()) >= {1, 2}  # v1 stays published: what partners connected by it had


def test_moving_partner_topics_needs_a_new_contract_version() -> None:
    moved = {**current_topology(), "writes": "fivecogs.{cog}.ingest"}
    assert topology_changes(published_topologies(), moved) == [
        "contract v2: writes changed without a new contract version"
    ]
    unpublished = {**current_topology(), "contract": 3}
    assert topology_changes(published_topologies(), unpublished) == [
        "contract v3 is not published (published/topics/v3.json)"
    ]
