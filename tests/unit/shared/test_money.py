from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from fivecogs_shared.money import PositiveThb, Quantity, Share, SignedThb, Thb, round_half_up


class Priced(BaseModel):
    amount: Thb


class Margin(BaseModel):
    amount: SignedThb


class Split(BaseModel):
    share: Share


class Delivered(BaseModel):
    quantity: Quantity


class Paid(BaseModel):
    amount: PositiveThb


def test_a_string_amount_is_read_exactly() -> None:
    assert Priced.model_validate_json('{"amount": "1250.50"}').amount == Decimal("1250.50")


def test_a_whole_amount_is_dumped_with_two_decimals() -> None:
    assert Priced.model_validate_json('{"amount": "12"}').model_dump_json() == '{"amount":"12.00"}'


def test_python_dump_keeps_the_decimal() -> None:
    assert Priced(amount=Decimal("3.5")).model_dump() == {"amount": Decimal("3.50")}


@pytest.mark.parametrize("raw", ["12.5", "0.1", "12.0"])
def test_a_json_float_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationError, match="never a float"):
        Priced.model_validate_json(f'{{"amount": {raw}}}')


def test_a_python_float_is_rejected() -> None:
    with pytest.raises(ValidationError, match="never a float"):
        Priced.model_validate({"amount": 12.5})


def test_three_decimal_places_are_rejected() -> None:
    with pytest.raises(ValidationError, match="at most 2 decimal places"):
        Priced.model_validate_json('{"amount": "12.345"}')


def test_a_computed_decimal_with_trailing_zeros_is_an_amount() -> None:
    computed = Decimal("0.60") * Decimal("100.00")
    assert Priced(amount=computed).model_dump_json() == '{"amount":"60.00"}'


def test_a_computed_decimal_with_satang_fractions_must_be_rounded_first() -> None:
    with pytest.raises(ValidationError, match="at most 2 decimal places"):
        Priced(amount=Decimal("0.60") * Decimal("100.01"))


@pytest.mark.parametrize("raw", ['"NaN"', '"Infinity"', '"1e3"', '" 12"', '"12."', '"1,000"', '"๑๒"', "true"])
def test_anything_but_a_plain_decimal_string_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        Priced.model_validate_json(f'{{"amount": {raw}}}')


def test_nan_decimal_is_rejected() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Priced(amount=Decimal("NaN"))


def test_a_negative_amount_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must not be negative"):
        Priced.model_validate_json('{"amount": "-0.01"}')


def test_a_margin_may_be_negative() -> None:
    assert Margin.model_validate_json('{"amount": "-35.2"}').model_dump_json() == '{"amount":"-35.20"}'


def test_negative_zero_prints_as_zero() -> None:
    assert Margin.model_validate_json('{"amount": "-0"}').model_dump_json() == '{"amount":"0.00"}'


def test_a_price_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        Paid.model_validate_json('{"amount": "0.00"}')


@pytest.mark.parametrize(("value", "rounded"), [("2.345", "2.35"), ("2.344", "2.34"), ("-2.345", "-2.35")])
def test_round_half_up(value: str, rounded: str) -> None:
    assert round_half_up(Decimal(value)) == Decimal(rounded)


def test_round_half_up_to_other_places() -> None:
    assert round_half_up(Decimal("0.33335"), places=4) == Decimal("0.3334")


def test_a_share_is_read_from_a_string_and_dumped_as_one() -> None:
    assert Split.model_validate_json('{"share": "0.60"}').model_dump_json() == '{"share":"0.60"}'


@pytest.mark.parametrize("raw", ['"1.01"', '"-0.1"', "0.6"])
def test_a_share_outside_zero_to_one_or_a_float_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        Split.model_validate_json(f'{{"share": {raw}}}')


def test_a_quantity_takes_strings_and_ints_but_not_floats() -> None:
    assert Delivered.model_validate_json('{"quantity": "12.5"}').quantity == Decimal("12.5")
    assert Delivered.model_validate_json('{"quantity": 3}').model_dump_json() == '{"quantity":"3"}'
    with pytest.raises(ValidationError, match="never a float"):
        Delivered.model_validate_json('{"quantity": 12.5}')


def test_money_is_described_as_a_string_in_the_json_schema() -> None:
    assert Priced.model_json_schema()["properties"]["amount"]["type"] == "string"
