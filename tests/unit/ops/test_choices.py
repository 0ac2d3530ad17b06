import pytest
import typer

from fivecogs_ops.choices import cog, unknown


def test_a_near_miss_is_named_with_every_choice() -> None:
    assert unknown("cog", "input", ["inputs", "knowledge"]) == (
        "unknown cog 'input': did you mean 'inputs'? (choices: inputs, knowledge)"
    )


def test_nothing_close_lists_the_choices_only() -> None:
    assert unknown("view", "zzz", ["province", "region"]) == "unknown view 'zzz' (choices: province, region)"


def test_a_cog_argument_refuses_a_typo_in_one_line() -> None:
    assert cog("marketing") == "marketing"
    with pytest.raises(typer.BadParameter, match=r"did you mean 'inputs'\?"):
        cog("input")
