"""The door of `/summary`: a browser without JavaScript cannot send a bearer header, but it answers a Basic
challenge. The operator token comes as the password (any user name) and is judged by the services' own check,
`authorization_error` (constant time, fails closed), as if it had come as `Authorization: Bearer`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from html import escape

from pydantic import SecretStr
from starlette.responses import HTMLResponse, Response

from fivecogs_shared.http import INVALID, LOCKED, MISSING, authorization_error

CHALLENGE = 'Basic realm="fivecogs ops"'
MALFORMED = b"Basic"  # no credentials in it: judged as missing
WHY = {
    MISSING: "no operator token: give any user name and the operator token as the password",
    INVALID: "that is not an operator token",
    LOCKED: LOCKED,
}


def as_bearer(value: bytes) -> bytes:
    """`Basic base64(user:token)` as `Bearer token`; any other scheme as it came."""
    scheme, _, credentials = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return value
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return MALFORMED
    _, colon, token = decoded.partition(b":")  # a user name has no colon (RFC 7617); a token may
    return b"Bearer " + token if colon else MALFORMED


def refusal(headers: Sequence[tuple[bytes, bytes]], tokens: Sequence[SecretStr]) -> str | None:
    """Why these request headers may not see the summary; None when they may."""
    values = [as_bearer(value) for name, value in headers if name == b"authorization"]
    error = authorization_error(values, tokens)
    return None if error is None else WHY.get(error, error)


def unauthorized(why: str, headers: dict[str, str]) -> Response:
    """401 with the reason and nothing else: no data, never the credentials that were sent."""
    body = f"<!doctype html><title>fivecogs · not authorised</title><p>Not authorised: {escape(why)}.</p>"
    return HTMLResponse(body, status_code=401, headers={**headers, "WWW-Authenticate": CHALLENGE})
