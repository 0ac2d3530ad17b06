"""FIVECOGS_TOPIC_PARTITIONS sets how many partitions every fivecogs topic is created with; a bad value is refused
with its reason, by the services at start and by partner provisioning, before anything is created."""

from __future__ import annotations

import asyncio

import pytest

from fivecogs_ops import partners
from fivecogs_shared.kafka_access import KafkaAccess
from fivecogs_shared.kafka_admin import DEFAULT_TOPIC_PARTITIONS, TOPIC_PARTITIONS_ENV, TopicSpec, default_partitions
from fivecogs_shared.settings import load_settings

BAD = ["0", "-1", "three", "2.5", "٣", "1001", "1" * 400]


def test_the_default_is_three_partitions() -> None:
    assert default_partitions({}) == DEFAULT_TOPIC_PARTITIONS == 3
    assert default_partitions({TOPIC_PARTITIONS_ENV: "  "}) == 3


def test_the_setting_gives_the_count() -> None:
    assert default_partitions({TOPIC_PARTITIONS_ENV: "1"}) == 1
    assert default_partitions({TOPIC_PARTITIONS_ENV: " 12 "}) == 12
    assert default_partitions({TOPIC_PARTITIONS_ENV: "1000"}) == 1000


@pytest.mark.parametrize("value", BAD)
def test_anything_but_a_whole_number_from_one_to_a_thousand_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=TOPIC_PARTITIONS_ENV) as refused:
        default_partitions({TOPIC_PARTITIONS_ENV: value})
    assert len(str(refused.value)) < 120  # the value is cut: an overlong one is not echoed whole


def test_a_topic_spec_is_created_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOPIC_PARTITIONS_ENV, "6")
    assert TopicSpec("fivecogs.inputs.events").new_topic().num_partitions == 6
    assert TopicSpec("x", partitions=1).partitions == 1  # given in code: as given


@pytest.mark.parametrize("value", ["0", "three"])
def test_a_service_refuses_a_bad_count_at_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TOPIC_PARTITIONS_ENV, value)
    with pytest.raises(ValueError, match=TOPIC_PARTITIONS_ENV):
        load_settings("inputs")


def test_partner_provisioning_refuses_a_bad_count_before_creating_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOPIC_PARTITIONS_ENV, "0")
    nowhere = KafkaAccess("127.0.0.1:1", "PLAINTEXT")  # never reached: the refusal comes first
    with pytest.raises(partners.PartnerError, match=TOPIC_PARTITIONS_ENV):
        asyncio.run(partners.add(nowhere, "coop-a", ["inputs"]))
