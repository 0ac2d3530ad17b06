"""The batch's state: an event's changes kept only when it is applied, and written once."""

from __future__ import annotations

from typing import Any, cast

from fivecogs_shared.batchstate import Key, Tables, parts


def _tables(locked: frozenset[str] = frozenset()) -> Tables:
    tables = Tables(cast(Any, None))
    tables.locked = locked
    return tables


def test_a_refused_event_leaves_nothing_and_an_applied_one_is_written_once_in_key_order() -> None:
    t = _tables()
    t.loaded("rows", {"b": 1}, ["a", "b"])
    t.put("rows", "a", 10)
    t.drop()  # refused
    assert t.get("rows", "a") is None
    assert t.knows("rows", "a")
    t.put("rows", "c", 3)
    t.put("rows", "a", 1)
    t.keep()
    t.put("rows", "b", 2)
    t.keep()
    assert t.changed("rows") == [1, 2, 3]
    t.written()
    assert t.changed("rows") == []
    assert [t.get("rows", k) for k in "abc"] == [1, 2, 3]


def test_the_current_events_changes_are_written_with_the_batchs_and_then_kept() -> None:
    """The careful pass writes after each event, inside its savepoint: pending changes count as changed."""
    t = _tables()
    t.put("rows", "a", 1)
    assert t.changed("rows") == [1]
    t.written()
    assert t.get("rows", "a") == 1
    assert t.changed("rows") == []


def test_postgres_never_overwrites_what_the_batch_changed() -> None:
    t = _tables()
    t.put("rows", "a", "ours")
    t.keep()
    t.loaded("rows", {"a": "theirs", "b": "theirs"})
    assert (t.get("rows", "a"), t.get("rows", "b")) == ("ours", "theirs")


def test_missing_keys_are_asked_once_each_in_sorted_order() -> None:
    t = _tables()
    t.loaded("rows", {"b": 1}, ["b"])
    assert t.missing("rows", ["d", "b", "a", "d"]) == ["a", "d"]


def test_refresh_forgets_what_another_transaction_may_have_changed() -> None:
    """Rows found absent and rows of unlocked tables are read again; locked rows and this batch's stay."""
    t = _tables(locked=frozenset({"locked"}))
    t.loaded("locked", {"present": 1}, ["present", "absent"])
    t.loaded("free", {"read": 1}, ["read"])
    t.put("free", "ours", 2)
    t.keep()
    t.refresh("anything:1")  # a reference the state cannot place: everything it may not know is read again
    assert t.knows("locked", "present")
    assert not t.knows("locked", "absent")
    assert not t.knows("free", "read")
    assert t.get("free", "ours") == 2


class _Named(Tables):
    def rows_of(self, reference: str) -> list[tuple[str, Key]] | None:
        found = parts(reference, "enterprise", 1)
        return [("enterprises", found[0])] if found else None


def test_refresh_for_a_reference_it_can_place_forgets_only_that_row() -> None:
    t = _Named(cast(Any, None))
    t.loaded("enterprises", {}, ["E:1", "E2"])
    t.loaded("free", {"read": 1})
    t.refresh("enterprise:E:1")
    assert not t.knows("enterprises", "E:1")
    assert t.knows("enterprises", "E2")
    assert t.knows("free", "read")


def test_a_reference_is_split_only_when_it_can_be_for_sure() -> None:
    assert parts("delivery:B1:D1", "delivery", 2) == ["B1", "D1"]
    assert parts("delivery:B:1:D1", "delivery", 2) is None  # an id with a colon: which one?
    assert parts("enterprise:E:1", "enterprise", 1) == ["E:1"]
    assert parts("order:O1", "enterprise", 1) is None
