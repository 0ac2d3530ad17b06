"""Money, shares and quantities as exact decimals.

Baht amounts travel as JSON strings ("1250.50"): a JSON number would be read as a binary float by most
partner stacks and one satang would eventually go missing between a sale and the households it is owed to.
"""

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

__all__ = ["PositiveThb", "Quantity", "Share", "SignedThb", "Thb", "round_half_up"]

# Plain ASCII digits only: Decimal() would also accept Thai digits, "1_000", "1e3" and surrounding spaces.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")

# Far above any programme amount, and small enough that sums of many amounts stay exact within
# the 28 significant digits of the default decimal context.
_LIMIT = Decimal(10) ** 15


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """Round the way a Thai receipt does (2.345 -> 2.35), not banker's rounding."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _DecimalRule:
    what: str
    places: int
    example: str
    signed: bool = False
    at_most: Decimal = _LIMIT
    canonical: bool = False  # quantize to `places`, so equal amounts also print alike

    def __call__(self, value: object) -> Decimal:
        number = self._parse(value)
        if not number.is_finite():
            raise ValueError(f"{self.what} must be a finite number")
        if number < 0 and not self.signed:
            raise ValueError(f"{self.what} must not be negative")
        if abs(number) > self.at_most:
            raise ValueError(f"{self.what} must be at most {self.at_most}")
        if number == 0:
            number = abs(number)  # "-0" would otherwise print as "-0.00"
        return round_half_up(number, self.places) if self.canonical else number

    def _parse(self, value: object) -> Decimal:
        if isinstance(value, float):
            raise ValueError(f'{self.what} is never a float: send a string such as "{self.example}"')
        if isinstance(value, bool):  # bool is an int subclass; True is not 1 baht
            raise ValueError(f"{self.what} must be a decimal string, not a boolean")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, Decimal):
            # Computed values carry trailing zeros (0.60 * 100.00 = 60.0000): judge the value, not its digits.
            if value.is_finite() and value != round_half_up(value, self.places):
                raise ValueError(f"{self.what} allows at most {self.places} decimal places")
            return value
        if isinstance(value, str):
            match = _DECIMAL_TEXT.fullmatch(value)
            if match is None:
                raise ValueError(f'{self.what} must be a decimal string such as "{self.example}"')
            if len(match.group(1) or "") > self.places:
                raise ValueError(f"{self.what} allows at most {self.places} decimal places")
            return Decimal(value)
        raise ValueError(f'{self.what} must be a decimal string such as "{self.example}"')


def _two_places(value: Decimal) -> str:
    return f"{value:.2f}"


def _as_written(value: Decimal) -> str:
    return format(value, "f")


# An amount in baht, >= 0, at most 2 decimal places; JSON "1250.50" in and out ("12" is dumped as "12.00").
Thb = Annotated[
    Decimal,
    BeforeValidator(_DecimalRule("an amount in THB", places=2, example="1250.50", canonical=True)),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "examples": ["1250.50"]}),
]

# A price or a payment: a zero price would list a product as free and a zero payment settles nothing.
PositiveThb = Annotated[Thb, Field(gt=0)]

# A margin can be a loss, so it may be negative; everything else about it is Thb.
SignedThb = Annotated[
    Decimal,
    BeforeValidator(_DecimalRule("an amount in THB", places=2, example="-35.20", signed=True, canonical=True)),
    PlainSerializer(_two_places, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,2})?$", "examples": ["-35.20"]}),
]

# A fraction of a margin in [0, 1], e.g. "0.60"; four places allow splits such as thirds ("0.3333").
Share = Annotated[
    Decimal,
    BeforeValidator(_DecimalRule("a share", places=4, example="0.60", at_most=Decimal(1))),
    PlainSerializer(_as_written, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^[01](\.[0-9]{1,4})?$", "examples": ["0.60"]}),
]

# An amount of an input (kilograms, litres, pieces...), >= 0; three places reach grams and millilitres.
Quantity = Annotated[
    Decimal,
    BeforeValidator(_DecimalRule("a quantity", places=3, example="12.5")),
    PlainSerializer(_as_written, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,3})?$", "examples": ["12.5"]}),
]
