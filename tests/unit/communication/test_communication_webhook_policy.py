"""The webhook signature partners verify (Standard Webhooks), and when a failed delivery is tried again or given up."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fivecogs_communication import signing
from fivecogs_communication.webhooks import DEVELOPMENT_SECRET, WebhookSettings, backoff_seconds, outcome

KEY, OLD_KEY = "current-signing-key-of-the-service", "previous-signing-key-of-the-service"
BODY = b'{"notice_id":"n1","subject":"sale"}'


def _partner_verifies(secret: str, headers: dict[str, str], body: bytes = BODY) -> bool:
    # What a partner does with the reference library and the secret provisioning gave it.
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_the_specification_example_vector() -> None:
    # The example of the Standard Webhooks specification: the scheme itself is pinned, not just self-consistent.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signed = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_notice_verifies_with_its_subscriptions_secret_only() -> None:
    headers = signing.headers([KEY], "sub-a", "n1", int(time.time()), BODY)
    assert _partner_verifies(signing.subscription_secret(KEY, "sub-a"), headers)
    assert not _partner_verifies(signing.subscription_secret(KEY, "sub-b"), headers)
    assert not _partner_verifies(signing.subscription_secret(OLD_KEY, "sub-a"), headers)
    assert not _partner_verifies(signing.subscription_secret(KEY, "sub-a"), headers, BODY + b" ")
    assert signing.subscription_secret(KEY, "sub-a").startswith("whsec_")


def test_the_id_and_timestamp_are_signed_and_an_old_notice_is_refused() -> None:
    now, secret = int(time.time()), signing.subscription_secret(KEY, "sub-a")
    headers = signing.headers([KEY], "sub-a", "n1", now, BODY)
    assert not _partner_verifies(secret, {**headers, "webhook-id": "n2"})
    assert not _partner_verifies(secret, {**headers, "webhook-timestamp": str(now + 1)})
    stale = now - signing.TOLERANCE_SECONDS - 60
    assert not _partner_verifies(secret, signing.headers([KEY], "sub-a", "n1", stale, BODY))


def test_during_a_rotation_a_notice_carries_a_signature_under_each_key() -> None:
    headers = signing.headers([KEY, OLD_KEY], "sub-a", "n1", int(datetime.now(UTC).timestamp()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _partner_verifies(signing.subscription_secret(KEY, "sub-a"), headers)
    assert _partner_verifies(signing.subscription_secret(OLD_KEY, "sub-a"), headers)
    settings = WebhookSettings(secret=KEY, previous_secret=OLD_KEY)
    assert settings.signing_keys() == [KEY, OLD_KEY]


def test_the_development_key_is_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIVECOGS_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="development key"):
        WebhookSettings()
    with pytest.raises(ValidationError, match="development key"):
        WebhookSettings(secret=KEY, previous_secret=DEVELOPMENT_SECRET)
    with pytest.raises(ValidationError, match="16 characters"):
        WebhookSettings(secret="short")
    assert WebhookSettings(secret=KEY).environment == "production"
    monkeypatch.setenv("FIVECOGS_ENVIRONMENT", "development")
    assert WebhookSettings().secret.get_secret_value() == DEVELOPMENT_SECRET


def test_operators_print_a_subscriptions_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_SECRET", KEY)
    assert signing.main(["sub-a"]) == 0
    assert capsys.readouterr().out.strip() == signing.subscription_secret(KEY, "sub-a")
    assert signing.main([]) == 2


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
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_SECRET", "from-env-0123456789")
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_MAX_ATTEMPTS", "5")
    settings = WebhookSettings()
    assert settings.secret.get_secret_value() == "from-env-0123456789"
    assert settings.max_attempts == 5


def test_a_claim_must_outlive_the_post() -> None:
    with pytest.raises(ValidationError):
        WebhookSettings(timeout_seconds=10, lease_seconds=5)


def test_loopback_webhooks_are_for_development_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIVECOGS_ENVIRONMENT", raising=False)
    assert WebhookSettings(secret=KEY).allow_loopback is False
    with pytest.raises(ValidationError, match="development only"):
        WebhookSettings(secret=KEY, allow_loopback=True)
    monkeypatch.setenv("FIVECOGS_COMMUNICATION_WEBHOOK_ALLOW_LOOPBACK", "true")
    with pytest.raises(ValidationError, match="development only"):
        WebhookSettings(secret=KEY)
    monkeypatch.setenv("FIVECOGS_ENVIRONMENT", "development")
    settings = WebhookSettings(secret=KEY)
    assert settings.allow_loopback is True
    assert settings.destination_policy().allow_loopback is True


def test_a_refused_destination_fails_the_notice_at_its_first_attempt() -> None:
    settings = WebhookSettings(secret=KEY, max_attempts=8)
    assert outcome(1, None, settings, refused=True) == ("failed", 0.0)
    assert outcome(1, None, settings) == ("pending", 1.0)
