"""Webhook signatures by the Standard Webhooks specification (standardwebhooks.com), so a partner verifies a
notice with an off-the-shelf library in its own language.

Each subscription has its own secret, derived from the service's signing key and the subscriber id: a partner
holding one subscription's secret can neither verify nor forge another's, and the service stores no secrets.
During a rotation the service holds two keys and sends one signature per key.

Operators hand a partner its secret with `python -m fivecogs_communication.signing <subscriber-id>` (the key
comes from FIVECOGS_COMMUNICATION_WEBHOOK_SECRET, as in the service).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
# Receivers should refuse timestamps further than this from their clock (the reference libraries use 5 minutes).
TOLERANCE_SECONDS = 300
_DERIVATION = b"fivecogs webhook subscription secret v1\x00"


def subscription_secret(signing_key: str, subscriber_id: str) -> str:
    """The `whsec_` secret of one subscription: HMAC-SHA256 of its id under the service's signing key."""
    derived = hmac.new(signing_key.encode(), _DERIVATION + subscriber_id.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(derived).decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the key being the base64 part of the `whsec_` secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def headers(
    signing_keys: Sequence[str], subscriber_id: str, webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per signing key (space-separated) while keys rotate."""
    signatures = (
        signature(subscription_secret(key, subscriber_id), webhook_id, timestamp, body) for key in signing_keys
    )
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from fivecogs_communication.webhooks import WebhookSettings

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(
            "usage: python -m fivecogs_communication.signing <subscriber-id>\n"
            "prints the subscription's whsec_ secret, derived from FIVECOGS_COMMUNICATION_WEBHOOK_SECRET"
        )
        return 0 if args and args[0] in ("-h", "--help") else 2
    settings = WebhookSettings()
    print(subscription_secret(settings.secret.get_secret_value(), args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
