"""FastStream-fed handlers of the communication service: decode, apply the domain in the unit of work, emit."""

from __future__ import annotations

from collections.abc import Mapping

from fivecogs_shared.consumer import Handler

HANDLERS: Mapping[str, Handler] = {}
