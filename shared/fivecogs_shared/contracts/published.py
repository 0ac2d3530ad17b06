"""Published contracts: the JSON Schema of every event type, committed under `published/`, and the check that a
change to a model stays compatible with what was published.

Compatible means every event valid under the published schema is still valid: no field removed (the models
forbid unknown fields, so an old event would carry an unknown one), no field newly required, no field's type
changed except an enum that only gained values. Anything else needs a new `.vN` type beside the old one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from fivecogs_shared.contracts.feedback import FEEDBACK_EVENT_TYPES
from fivecogs_shared.contracts.internal import INTERNAL_EVENT_TYPES
from fivecogs_shared.contracts.partner import PARTNER_EVENT_TYPES
from fivecogs_shared.contracts.topics import PARTNER_ID, PARTNER_SOURCE_PREFIX

Schema = dict[str, Any]
PUBLISHED_DIR = Path(str(resources.files("fivecogs_shared.contracts") / "published"))
# The partner contract's version: which topics a partner writes and reads, and what binds an event to it. A
# change to the topology below is a new version, published beside the old one (`published/topics/vN.json`).
CONTRACT_VERSION = 2


def current_schemas() -> dict[str, Schema]:
    """ce_type → JSON Schema of its data, as the code defines it now."""
    models = {t: e.model for t, e in PARTNER_EVENT_TYPES.items()}
    models |= {t: e.model for t, e in INTERNAL_EVENT_TYPES.items()}
    models |= {t: e.model for t, e in FEEDBACK_EVENT_TYPES.items()}
    return {ce_type: model.model_json_schema(mode="validation") for ce_type, model in sorted(models.items())}


def published_schemas(folder: Path = PUBLISHED_DIR) -> dict[str, Schema]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def export(folder: Path = PUBLISHED_DIR) -> list[str]:
    """Write the current schemas (after a deliberate, compatible change); returns the types written."""
    folder.mkdir(parents=True, exist_ok=True)
    for ce_type, schema in current_schemas().items():
        (folder / f"{ce_type}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    export_topology(folder / "topics")
    return list(current_schemas())


def current_topology() -> Schema:
    """Where partners publish and read, as the code does it now (docs/partners.md §1)."""
    return {
        "contract": CONTRACT_VERSION,
        "partner_id": PARTNER_ID.pattern,
        "ce_source": f"{PARTNER_SOURCE_PREFIX}{{partner}} or {PARTNER_SOURCE_PREFIX}{{partner}}/...",
        "writes": "fivecogs.{cog}.ingest.{partner}",
        "reads": "fivecogs.feedback.{partner}",
        "dead_letters": "fivecogs.{cog}.ingest.{partner}.dlq",
        "types": {ce_type: event.cog for ce_type, event in sorted(PARTNER_EVENT_TYPES.items())},
    }


def published_topologies(folder: Path = PUBLISHED_DIR / "topics") -> dict[int, Schema]:
    return {int(path.stem.removeprefix("v")): json.loads(path.read_text()) for path in folder.glob("v*.json")}


def export_topology(folder: Path = PUBLISHED_DIR / "topics") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"v{CONTRACT_VERSION}.json").write_text(json.dumps(current_topology(), indent=2) + "\n")


def topology_changes(published: dict[int, Schema], current: Schema) -> list[str]:
    """A topology that differs from the one published under its version: partners connected by that version's
    documentation would write where nobody reads. Raise CONTRACT_VERSION and publish the new one instead."""
    version = current["contract"]
    if version not in published:
        return [f"contract v{version} is not published (published/topics/v{version}.json)"]
    old = published[version]
    changed = sorted(key for key in old.keys() | current.keys() if old.get(key) != current.get(key))
    return [f"contract v{version}: {key} changed without a new contract version" for key in changed]


def breaking_changes(published: dict[str, Schema], current: dict[str, Schema]) -> list[str]:
    problems = [f"{t}: the published type is gone" for t in published if t not in current]
    for ce_type, old in published.items():
        if ce_type in current:
            problems += [f"{ce_type}: {p}" for p in _object_changes(old, current[ce_type], old, current[ce_type], "")]
    return problems


def _object_changes(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str) -> Iterator[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            yield f"field {path}{name} was removed"
    for name in set(new.get("required", ())) - set(old.get("required", ())):
        yield f"field {path}{name} became required"
    for name, old_field in old_props.items():
        if name in new_props:
            yield from _field_changes(old_field, new_props[name], old_root, new_root, f"{path}{name}")


def _field_changes(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str) -> Iterator[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    if "properties" in old or "properties" in new:
        yield from _object_changes(old, new, old_root, new_root, f"{path}.")
        return
    if "items" in old and "items" in new:
        yield from _field_changes(old["items"], new["items"], old_root, new_root, f"{path}[]")
        old, new = _without(old, "items"), _without(new, "items")
    if "enum" in old and "enum" in new and set(old["enum"]) <= set(new["enum"]):
        old, new = _without(old, "enum"), _without(new, "enum")
    if "pattern" in old and "pattern" in new and _alternatives(old["pattern"]) <= _alternatives(new["pattern"]):
        old, new = _without(old, "pattern"), _without(new, "pattern")
    if _without(old, "description", "title") != _without(new, "description", "title"):
        yield f"field {path} changed type: {json.dumps(old, sort_keys=True)} -> {json.dumps(new, sort_keys=True)}"


def _alternatives(pattern: str) -> frozenset[str]:
    """The choices of an enum-like pattern `^(a|b|c)$`, so that one that only gained choices stays compatible;
    any other pattern is its own single choice (a change to it is a change of type)."""
    if pattern.startswith("^(") and pattern.endswith(")$") and "(" not in pattern[2:-2]:
        return frozenset(pattern[2:-2].split("|"))
    return frozenset({pattern})


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow a local `$ref` (pydantic puts nested models and enums under `$defs`)."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**root.get("$defs", {})[name], **_without(schema, "$ref")}
    return schema


def _without(schema: Schema, *keys: str) -> Schema:
    return {k: v for k, v in schema.items() if k not in keys}
