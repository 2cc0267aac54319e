"""GS1 mod-10 check digits for metering point ids.

Nordic metering point ids (Norwegian "målepunkt-ID", Elhub) are 18-digit GS1
GSRN numbers: 17 data digits and one check digit. The check digit is computed
with the GS1 mod-10 algorithm: counting from the right-most *data* digit,
digits are weighted 3, 1, 3, 1, ...; the check digit is the amount that brings
the weighted sum up to the next multiple of ten.

Example (worked by hand in ``tests/test_gs1.py``)::

    70705750000000001  ->  check digit 5  ->  707057500000000015
"""

from __future__ import annotations

GSRN_LENGTH = 18


def gs1_check_digit(data_digits: str) -> int:
    """Return the GS1 mod-10 check digit for a string of data digits.

    Parameters
    ----------
    data_digits : str
        The digits without the check digit (any length >= 1).

    Returns
    -------
    int
        The check digit, 0..9.
    """
    if not data_digits or not (data_digits.isascii() and data_digits.isdigit()):
        raise ValueError(f"GS1 data must be a non-empty string of digits, got {data_digits!r}")
    total = 0
    for position, char in enumerate(reversed(data_digits)):
        weight = 3 if position % 2 == 0 else 1
        total += weight * (ord(char) - 48)
    return (10 - total % 10) % 10


def validate_gsrn(value: str) -> str:
    """Check an 18-digit metering point id and return it unchanged.

    Raises
    ------
    ValueError
        With a message saying what is wrong (length, non-digits or the check digit
        expected).
    """
    if not isinstance(value, str):
        raise ValueError(f"metering point id must be a string of {GSRN_LENGTH} digits")
    if len(value) != GSRN_LENGTH or not (value.isascii() and value.isdigit()):
        raise ValueError(
            f"metering point id must be exactly {GSRN_LENGTH} digits (ASCII 0-9), got {len(value)} characters "
            f"{value[:40]!r}"
        )
    expected = gs1_check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise ValueError(
            f"metering point id {value} fails the GS1 check digit: last digit is {value[-1]}, expected {expected}"
        )
    return value


def make_gsrn(data17: str) -> str:
    """Append the check digit to 17 data digits."""
    if len(data17) != GSRN_LENGTH - 1:
        raise ValueError(f"need {GSRN_LENGTH - 1} data digits, got {len(data17)}")
    return data17 + str(gs1_check_digit(data17))
