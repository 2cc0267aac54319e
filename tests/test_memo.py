from powercheck.memo import IdentityMemo


def test_identity_memo_keeps_a_dict_per_object_and_is_bounded():
    memo = IdentityMemo(limit=2)
    a, b, c = [1], [1], [2]  # a and b equal, not the same object
    memo.of(a)["x"] = 1
    assert memo.of(a) == {"x": 1}
    assert memo.of(b) == {}  # by identity, not equality
    memo.of(c)  # a third object: the memo held two, so it starts again
    assert memo.of(a) == {}
