"""Service settings that decide who can reach a service: the interface it listens on and the operator tokens."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from fivecogs_shared.settings import load_settings

TOKEN = "a-valid-operator-token-0123"
OTHER = "a-rotated-operator-token-4567"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says what is set; tests/conftest.py's test token and a developer's variables do not count."""
    for name in ("FIVECOGS_OPERATOR_TOKENS", "FIVECOGS_HTTP_HOST", "FIVECOGS_INPUTS_HTTP_HOST", "HTTP_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_a_service_listens_on_loopback_by_default() -> None:
    assert load_settings("inputs").http_host == "127.0.0.1"
    assert load_settings("management").http_host == "127.0.0.1"


def test_fivecogs_http_host_sets_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_HTTP_HOST", "0.0.0.0")
    assert {load_settings(cog).http_host for cog in ("inputs", "management")} == {"0.0.0.0"}


def test_a_service_s_own_host_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("FIVECOGS_INPUTS_HTTP_HOST", "10.1.2.3")
    assert load_settings("inputs").http_host == "10.1.2.3"
    assert load_settings("management").http_host == "0.0.0.0"  # another service's variable is not ours


def test_a_host_given_in_code_wins_and_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_HOST", "0.0.0.0")  # e.g. left by a CGI environment: not a fivecogs variable
    assert load_settings("inputs").http_host == "127.0.0.1"
    assert load_settings("inputs", http_host="192.0.2.1").http_host == "192.0.2.1"


def test_operator_tokens_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", f" {TOKEN} ,{OTHER},")
    tokens = load_settings("management").operator_tokens
    assert all(isinstance(token, SecretStr) for token in tokens)
    assert [token.get_secret_value() for token in tokens] == [TOKEN, OTHER]


def test_no_tokens_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings("management").operator_tokens == ()
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", "")
    assert load_settings("management").operator_tokens == ()


@pytest.mark.parametrize("value", ["short-token", f"{TOKEN},0123456789abcde"])
def test_a_token_shorter_than_16_characters_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", value)
    with pytest.raises(ValidationError) as refused:
        load_settings("management")
    assert "shorter than 16 characters" in str(refused.value)
    assert value.split(",")[-1] not in str(refused.value)  # the refused token is not printed
    assert TOKEN not in str(refused.value)


def test_sixteen_characters_are_enough() -> None:
    [token] = load_settings("management", operator_tokens=["0123456789abcdef"]).operator_tokens
    assert token.get_secret_value() == "0123456789abcdef"


@pytest.mark.parametrize("bad", ["a token with spaces inside", 'quote"d-operator-token-x', "ünïcode-operator-token"])
def test_a_token_a_header_cannot_carry_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings("management", operator_tokens=[bad])
    assert "bearer token cannot carry" in str(refused.value)
    assert bad not in str(refused.value)


def test_tokens_given_in_code_follow_the_same_rules() -> None:
    assert len(load_settings("management", operator_tokens=[SecretStr(TOKEN), OTHER]).operator_tokens) == 2
    with pytest.raises(ValidationError):
        load_settings("management", operator_tokens=["tiny"])


def test_tokens_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVECOGS_OPERATOR_TOKENS", f"{TOKEN},{OTHER}")
    settings = load_settings("management")
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert TOKEN not in shown
        assert OTHER not in shown
    assert "**********" in repr(settings)


def test_a_refused_setting_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value put in the wrong variable may be a secret: validation errors name the field, never the value."""
    monkeypatch.setenv("FIVECOGS_MANAGEMENT_HTTP_PORT", "s3cret-pasted-here")
    with pytest.raises(ValidationError) as refused:
        load_settings("management")
    assert "http_port" in str(refused.value)
    assert "s3cret-pasted-here" not in str(refused.value)
