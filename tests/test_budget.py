import pytest

from robnas.errors import BudgetError
from robnas.space.budget import format_count, parse_budget


@pytest.mark.parametrize(
    "text, value",
    [
        ("5M", 5_000_000),
        ("500K", 500_000),
        ("1.5G", 1_500_000_000),
        ("5e6", 5_000_000),
        ("5000000", 5_000_000),
        ("2.5m", 2_500_000),
        (" 7k ", 7000),
    ],
)
def test_budget_forms(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["", "5MB", "-5M", "five", "0", "1e400", "5 M M"])
def test_bad_budgets_name_the_accepted_forms(text):
    with pytest.raises(BudgetError, match="5M"):
        parse_budget(text)


def test_format_count():
    assert format_count(6_842_710) == "6.84M" and format_count(999) == "999"
