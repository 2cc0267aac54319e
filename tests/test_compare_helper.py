"""The tolerant comparison used by the golden and rule-case tests fails where it must."""

from tests.helpers.compare import differences


def test_last_bit_float_differences_are_equal():
    a = 2.6262552781036903
    b = 2.6262552781036894  # the same value computed on another CPU (seen in the golden file)
    assert a != b and differences([a, "x"], [b, "x"]) == []


def test_real_differences_are_reported_with_their_path():
    assert differences({"v": 1.0}, {"v": 1.000001}) == [".v: 1.0 != 1.000001"]
    assert differences(-4.915293398740857, -4.915293412428525) == []  # a margin seen differing by 1.4e-8
    assert differences(0.0, 2e-7) != []
    assert differences(["pass"], ["fail"]) == ["[0]: 'pass' != 'fail'"]
    assert differences({"a": 1}, {"b": 1}) == [": keys ['a', 'b'] differ"]
    assert differences([1, 2], [1]) == [": length 2 != 1"]
    assert differences(True, 1) != [] and differences(None, 0.0) != []
    assert differences(float("nan"), float("nan")) == [] and differences(float("nan"), 1.0) != []
    assert differences(3, 4) != []
