"""The 77 provinces of Thailand and the region each belongs to.

Names are the English (Royal Institute) spellings of ISO 3166-2:TH, except that TH-10 is "Bangkok".
Regions follow the four-region statistical scheme (NESDC/NSO): the lower north (Nakhon Sawan, Tak,
Phitsanulok...) counts as north, and the east and west (Chon Buri, Kanchanaburi, Phetchaburi...) count as
central, giving north 17, northeast 20, central 26 (with Bangkok), south 14.
"""

import difflib
import json
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, WithJsonSchema

__all__ = ["PROVINCES", "REGIONS", "TARGET_PROVINCES", "Province", "Region", "region_of"]

Region = Literal["north", "northeast", "central", "south"]
REGIONS: tuple[Region, ...] = get_args(Region)


def _load() -> Mapping[str, Region]:
    rows = json.loads(files("fivecogs_shared").joinpath("data/provinces.json").read_text(encoding="utf-8"))
    table: dict[str, Region] = {}
    for row in rows:
        region = row["region"]
        if region not in REGIONS:
            raise ValueError(f"provinces.json: {row['name']} has unknown region {region!r}")
        table[row["name"]] = region
    return MappingProxyType(table)


PROVINCES: Mapping[str, Region] = _load()


def _letters(name: str) -> str:
    return "".join(char for char in name.casefold() if char.isalnum())


def _suggestion(name: str) -> str:
    # "Buriram" and "buri ram" differ from "Buri Ram" only in spaces and case: name that one first.
    by_letters = {_letters(known): known for known in PROVINCES}
    same_letters = by_letters.get(_letters(name))
    # A short form of a long name, as in "Ayutthaya" for "Phra Nakhon Si Ayutthaya".
    longer = [known for letters, known in by_letters.items() if len(name) > 3 and _letters(name) in letters]
    if same_letters:
        close = [same_letters]
    elif len(longer) == 1:
        close = longer
    else:
        close = difflib.get_close_matches(name, PROVINCES, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_province(name: str) -> str:
    # Exact match only: a second spelling accepted here would become a second province in every total.
    if name not in PROVINCES:
        raise ValueError(f"unknown province {name!r}{_suggestion(name)} (use the English name exactly)")
    return name


def region_of(province: str) -> Region:
    """The region of a province given by its exact English name; ValueError (with a suggestion) otherwise."""
    return PROVINCES[_known_province(province)]


# A province by its exact English name, e.g. "Nakhon Si Thammarat".
Province = Annotated[
    str,
    AfterValidator(_known_province),
    WithJsonSchema({"type": "string", "enum": sorted(PROVINCES)}),
]

# The 14 provinces of the programme's target group. The news item names only the four workshop provinces
# (Nakhon Si Thammarat, Nakhon Ratchasima, Phetchaburi, Phitsanulok); the other ten are our choice, spread
# over the four regions until the programme publishes its list.
TARGET_PROVINCES: tuple[str, ...] = (
    # workshop provinces
    "Nakhon Si Thammarat",
    "Nakhon Ratchasima",
    "Phetchaburi",
    "Phitsanulok",
    # north
    "Chiang Mai",
    "Nan",
    # northeast
    "Udon Thani",
    "Ubon Ratchathani",
    "Khon Kaen",
    "Sakon Nakhon",
    # south
    "Songkhla",
    "Surat Thani",
    # central
    "Chanthaburi",
    "Suphan Buri",
)
