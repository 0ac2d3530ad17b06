"""docs/partners.md as the tests read it: its code examples, its tables and its links.

Every fenced block in the guide carries a marker on the line before it, invisible to readers, that says what
the block is and so how a test checks it: `<!-- example: <kind> [<argument>] -->`. A block without one, or with
a kind no test knows, fails tests/unit/test_partner_guide.py, so no example goes unchecked.

- `settings` (json): equals what `fivecogs partners add --json` prints (unit);
- `client-module` (python): loads those settings into aiokafka's arguments (unit); the examples import it;
- `event <ce_type>` (json): valid by the contract model and the published schema (unit); the worked example
  publishes exactly it (integration);
- `feedback <ce_type>` (json): valid by the feedback model and the published schema (unit);
- `webhook-verify` (python): verifies a signed notice, refuses a forged one (unit);
- `feedback-consumer`, `publish` (python): run against the stack; every event published is accepted, and the
  consumer prints the outcomes (integration);
- `console-producer` (sh): its record reads as a valid event on its topic (unit; the console producer itself
  is not run: its jar is not part of the stack);
- `api <name>` (sh): runs against management's HTTP API (integration), and `api-response <name>` (json) is
  what it printed.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = DOCS / "partners.md"

KINDS = {
    "settings": "json",
    "client-module": "python",
    "event": "json",
    "feedback": "json",
    "webhook-verify": "python",
    "feedback-consumer": "python",
    "publish": "python",
    "console-producer": "sh",
    "api": "sh",
    "api-response": "json",
}

_MARKER = re.compile(r"^<!-- example: ([a-z-]+)(?: (\S+))? -->$")
_FENCE = re.compile(r"^```([a-z]*)\s*$")
_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$")


@dataclass(frozen=True)
class Example:
    kind: str  # "" when the block has no marker
    argument: str
    language: str
    code: str
    line: int  # of the opening fence, 1-based
    section: str  # the nearest heading above it

    def json(self) -> Any:
        return json.loads(self.code)

    def __str__(self) -> str:
        return f"docs/partners.md:{self.line} ({self.kind or 'unmarked'} {self.argument}".rstrip() + ")"


def examples(text: str | None = None) -> list[Example]:
    lines = (GUIDE.read_text(encoding="utf-8") if text is None else text).split("\n")
    found: list[Example] = []
    section, index = "", 0
    while index < len(lines):
        line = lines[index]
        if heading := _HEADING.match(line):
            section = heading.group(2)
        fence = _FENCE.match(line)
        if fence is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        marker = _MARKER.match(lines[index - 1]) if index else None
        kind, argument = (marker.group(1), marker.group(2) or "") if marker else ("", "")
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Example(kind, argument, fence.group(1), code, index + 1, section))
        index = end + 1
    return found


def of_kind(kind: str, text: str | None = None) -> list[Example]:
    return [example for example in examples(text) if example.kind == kind]


def one(kind: str, argument: str = "", text: str | None = None) -> Example:
    [example] = [e for e in of_kind(kind, text) if e.argument == argument]
    return example


def table(heading_text: str, first_column: str, text: str | None = None) -> list[dict[str, str]]:
    """The rows of the first table after a heading (whose text contains `heading_text`) whose first column is
    named `first_column`, as {column: cell}, cells without their backticks."""
    lines = (GUIDE.read_text(encoding="utf-8") if text is None else text).split("\n")
    start = next(i for i, line in enumerate(lines) if _HEADING.match(line) and heading_text in line)
    for index in range(start + 1, len(lines) - 1):
        if _HEADING.match(lines[index]):
            break
        if not (_is_row(lines[index]) and set(lines[index + 1]) <= set("|-: ")):
            continue
        names = [cell.replace("`", "") for cell in _cells(lines[index])]
        if names[0] != first_column:
            continue
        rows = []
        for line in lines[index + 2 :]:
            if not _is_row(line):
                break
            rows.append(dict(zip(names, (cell.replace("`", "") for cell in _cells(line)), strict=True)))
        return rows
    raise AssertionError(f"no table with first column {first_column!r} under {heading_text!r}")


def _is_row(line: str) -> bool:
    return line.startswith("|") and line.rstrip().endswith("|")


def _cells(line: str) -> list[str]:
    """A table row's cells: split at the pipes that are not inside `code`."""
    cells, cell, in_code = [], "", False
    for char in line.strip()[1:-1]:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
    return [*cells, cell.strip()]


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    slugs: set[str] = set()
    for line in path.read_text(encoding="utf-8").split("\n"):
        if heading := _HEADING.match(line):
            title = heading.group(2).lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            slugs.add(slug)
    return slugs


def links(path: Path) -> list[str]:
    """Every Markdown link target in the file: `#anchor`, `file.md#anchor`, `file.md` or a URL."""
    return re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))


# --- the console producer's record ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleRecord:
    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]
    properties: dict[str, str]  # the client.properties the example writes


def console_record(example: Example) -> ConsoleRecord:
    """The record `kafka-console-producer.sh` would send for the example, split as its own options say."""
    code = example.code
    properties_text = code.split("<<'PROPS'\n", 1)[1].split("\nPROPS\n", 1)[0]
    properties = dict(line.split("=", 1) for line in properties_text.split("\n"))
    line = shlex.split(code.split("\necho ", 1)[1].split("\n", 1)[0].rstrip("|").strip())[0]
    command = shlex.split(code.split("|\n", 1)[1].replace("\\\n", " "))
    options: dict[str, str] = {}
    for name, value in itertools.pairwise(command):
        if name == "--topic":
            options["topic"] = value
        elif name in ("--property", "--reader-property"):
            prop, _, setting = value.partition("=")
            options[prop] = setting
    assert options.get("parse.headers") == "true", options
    assert options.get("parse.key") == "true", options
    header_part, rest = line.split(options["headers.delimiter"], 1)
    key, value = rest.split(options["key.separator"], 1)
    headers = []
    for pair in header_part.split(options["headers.separator"]):
        name, _, header_value = pair.partition(options["headers.key.separator"])
        headers.append((name, header_value.encode()))
    return ConsoleRecord(options["topic"], key, value.encode(), headers, properties)


# --- JSON Schema, the part the published schemas use ---------------------------------------------------

_KNOWN_KEYWORDS = frozenset(
    {
        "$ref",
        "$defs",
        "additionalProperties",
        "anyOf",
        "default",
        "description",
        "enum",
        "examples",
        "format",
        "items",
        "maxItems",
        "maxLength",
        "maximum",
        "minItems",
        "minLength",
        "minimum",
        "pattern",
        "properties",
        "required",
        "title",
        "type",
    }
)
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(instance: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, at: str = "") -> list[str]:
    """Where `instance` breaks `schema` (empty: it is valid). Covers exactly the keywords the published schemas
    use, and refuses any other, so that a schema it does not understand never passes silently."""
    root = schema if root is None else root
    while "$ref" in schema:
        named = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
        schema = {**named, **{k: v for k, v in schema.items() if k != "$ref"}}
    unknown = set(schema) - _KNOWN_KEYWORDS
    if unknown:
        raise NotImplementedError(f"JSON Schema keywords {sorted(unknown)} at {at or '(root)'}")
    where = at or "(root)"
    if "anyOf" in schema:
        if all(schema_errors(instance, option, root, at) for option in schema["anyOf"]):
            return [f"{where}: matches none of {schema['anyOf']}"]
        return []
    if "type" in schema and not _TYPES[schema["type"]](instance):
        return [f"{where}: {instance!r} is not of type {schema['type']}"]
    errors: list[str] = []
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: {name} is required" for name in schema.get("required", ()) if name not in instance]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: {name} is not allowed" for name in instance if name not in properties]
        for name, value in instance.items():
            if name in properties:
                errors += schema_errors(value, properties[name], root, f"{at}.{name}" if at else name)
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0) or len(instance) > schema.get("maxItems", len(instance)):
            errors.append(f"{where}: {len(instance)} items")
        for n, item in enumerate(instance):
            errors += schema_errors(item, schema.get("items", {}), root, f"{where}[{n}]")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0) or len(instance) > schema.get("maxLength", len(instance)):
            errors.append(f"{where}: length {len(instance)}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{where}: {instance!r} does not match {schema['pattern']}")
        if "format" in schema and not _formatted(instance, schema["format"]):
            errors.append(f"{where}: {instance!r} is not a {schema['format']}")
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{where}: {instance} < {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{where}: {instance} > {schema['maximum']}")
    return errors


def _formatted(value: str, form: str) -> bool:
    try:
        if form == "date":
            return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(date.fromisoformat(value))
        if form == "date-time":  # RFC 3339: a date, a time and an offset (or Z)
            moment = datetime.fromisoformat(value)
            return "T" in value.upper() and moment.tzinfo is not None
        if form == "uri":
            parts = urlsplit(value)
            return bool(parts.scheme and parts.netloc)
    except ValueError:
        return False
    raise NotImplementedError(f"JSON Schema format {form!r}")


@cache
def published_schema(ce_type: str) -> dict[str, Any]:
    from fivecogs_shared.contracts.published import PUBLISHED_DIR

    schema: dict[str, Any] = json.loads((PUBLISHED_DIR / f"{ce_type}.json").read_text())
    return schema
