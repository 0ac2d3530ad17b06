"""The end-to-end tests publish as the provisioned test partner too (see tests/integration/conftest.py)."""

from __future__ import annotations

from tests.integration.conftest import _test_partner_exists

__all__ = ["_test_partner_exists"]
