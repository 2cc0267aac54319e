import pytest

from powercheck.gs1 import gs1_check_digit, make_gsrn, validate_gsrn


def test_check_digit_worked_by_hand():
    # 17 data digits of 70705750000000001; weights from the right: 3,1,3,1,...
    data = "70705750000000001"
    # right-most digit '1' x3 = 3; zeros contribute nothing until the leading part:
    # digits (left to right) 7 0 7 0 5 7 5 0 ... 0 1 with weights (from the left) 3 1 3 1 3 1 3 1 ... 3
    # 7*3 + 0*1 + 7*3 + 0*1 + 5*3 + 7*1 + 5*3 + 1*3 = 21 + 21 + 15 + 7 + 15 + 3 = 82
    # check digit = (10 - 82 % 10) % 10 = 8
    assert gs1_check_digit(data) == 8
    assert make_gsrn(data) == "707057500000000018"


def test_gtin13_reference_example():
    # GS1's own GTIN-13 example 629104150021 -> check digit 3 (same mod-10 rule)
    assert gs1_check_digit("629104150021") == 3


def test_validate_accepts_and_rejects():
    good = make_gsrn("70705750012345678")
    assert validate_gsrn(good) == good
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    with pytest.raises(ValueError, match="check digit"):
        validate_gsrn(wrong)
    with pytest.raises(ValueError, match="exactly 18 digits"):
        validate_gsrn(good[:-1])
    with pytest.raises(ValueError, match="exactly 18 digits"):
        validate_gsrn("70705750012345678X")


def test_every_single_digit_error_is_caught():
    good = make_gsrn("70705750012345678")
    for pos in range(18):
        for d in "0123456789":
            if d == good[pos]:
                continue
            bad = good[:pos] + d + good[pos + 1 :]
            with pytest.raises(ValueError):
                validate_gsrn(bad)
