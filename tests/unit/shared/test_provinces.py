from collections import Counter

import pytest
from pydantic import BaseModel, ValidationError

from fivecogs_shared.provinces import PROVINCES, REGIONS, TARGET_PROVINCES, Province, region_of

WORKSHOP_PROVINCES = ("Nakhon Si Thammarat", "Nakhon Ratchasima", "Phetchaburi", "Phitsanulok")


class Located(BaseModel):
    province: Province


def test_there_are_77_provinces() -> None:
    assert len(PROVINCES) == 77


def test_regions_follow_the_four_region_scheme() -> None:
    assert Counter(PROVINCES.values()) == {"north": 17, "northeast": 20, "central": 26, "south": 14}
    assert set(PROVINCES.values()) == set(REGIONS)


@pytest.mark.parametrize(
    ("province", "region"),
    [
        ("Bangkok", "central"),
        ("Chon Buri", "central"),
        ("Kanchanaburi", "central"),
        ("Phetchaburi", "central"),
        ("Tak", "north"),
        ("Phitsanulok", "north"),
        ("Nakhon Sawan", "north"),
        ("Nakhon Ratchasima", "northeast"),
        ("Bueng Kan", "northeast"),
        ("Nakhon Si Thammarat", "south"),
    ],
)
def test_region_of(province: str, region: str) -> None:
    assert region_of(province) == region


def test_the_workshop_provinces_are_among_the_14_target_provinces() -> None:
    assert len(TARGET_PROVINCES) == 14
    assert len(set(TARGET_PROVINCES)) == 14
    assert set(WORKSHOP_PROVINCES) <= set(TARGET_PROVINCES)


def test_target_provinces_are_real_and_span_every_region() -> None:
    assert {region_of(province) for province in TARGET_PROVINCES} == set(REGIONS)


def test_an_unknown_province_suggests_the_close_name() -> None:
    with pytest.raises(ValueError, match="did you mean 'Nakhon Si Thammarat'"):
        region_of("Nakhon Si Thamarat")


@pytest.mark.parametrize(
    ("written", "meant"),
    [("Buriram", "Buri Ram"), ("bangkok", "Bangkok"), ("Ayutthaya", "Phra Nakhon Si Ayutthaya")],
)
def test_other_spellings_are_rejected_with_the_canonical_name(written: str, meant: str) -> None:
    with pytest.raises(ValidationError, match=f"did you mean '{meant}'"):
        Located(province=written)


def test_surrounding_spaces_are_not_trimmed_away() -> None:
    with pytest.raises(ValidationError, match="unknown province"):
        Located(province=" Bangkok")


def test_a_known_province_validates() -> None:
    assert Located.model_validate_json('{"province": "Ubon Ratchathani"}').province == "Ubon Ratchathani"
