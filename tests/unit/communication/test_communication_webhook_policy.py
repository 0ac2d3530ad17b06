"""The webhook signature receivers verify, and when a failed delivery is tried again or given up."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import ValidationError

from fivecogs_communication.webhooks import WebhookSettings, backoff_seconds, outcome, sign


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"notice_id":"n1"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    # A known vector (RFC 4231 test case 2), so the scheme itself is pinned, not just self-consistent.
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_signature_changes_with_body_and_secret() -> None:
    assert sign("a", b"x") != sign("b", b"x")
    assert sign("a", b"x") != sign("a", b"y")


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    waits = [backoff_seconds(n, initial=1.0, cap=300.0) for n in range(1, 12)]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_outcomes_delivered_on_2xx_retried_otherwise_failed_after_the_last_attempt() -> None:
    settings = WebhookSettings(max_attempts=3, backoff_initial_seconds=1.0, backoff_cap_seconds=300.0)
    assert outcome(1, 200, settings) == ("delivered", 0.0)
    assert outcome(2, 204, settings) == ("delivered", 0.0)
    assert outcome(1, 500, settings) == ("pending", 1.0)
    assert outcome(2, None, settings) == ("pending", 2.0)  # no answer at all (connection refused, timeout)
    assert outcome(1, 302, settings) == ("pending", 1.0)  # redirects are not followed: not delivered
    assert outcome(3, 500, settings) == ("failed", 0.0)
    assert outcome(3, 200, settings) == ("delivered", 0.0)


def test_secret_and_intervals_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_MAX_ATTEMPTS", "5")
    settings = WebhookSettings()
    assert settings.secret.get_secret_value() == "from-env"
    assert settings.max_attempts == 5


def test_a_claim_must_outlive_the_post() -> None:
    with pytest.raises(ValidationError):
        WebhookSettings(timeout_seconds=10, lease_seconds=5)
