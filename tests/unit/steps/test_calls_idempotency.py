"""Idempotency keys: deterministic, and different whenever job, step or item differ."""

from portl.steps.idempotency import idempotency_key, item_key


def test_the_same_job_step_and_item_give_the_same_key():
    assert idempotency_key("flow_a", "notify", "SRC:42") == idempotency_key("flow_a", "notify", "SRC:42")


def test_the_key_is_a_sha256_hex_digest():
    key = idempotency_key("flow_a", "notify", "1")
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)


def test_each_part_changes_the_key():
    base = idempotency_key("flow_a", "notify", "1")
    assert len({base, idempotency_key("flow_b", "notify", "1"), idempotency_key("flow_a", "post", "1"),
                idempotency_key("flow_a", "notify", "2")}) == 4


def test_parts_cannot_be_shifted_into_each_other():
    assert idempotency_key("a|b", "c", "d") != idempotency_key("a", "b|c", "d")
    assert idempotency_key("ab", "c", "") != idempotency_key("a", "bc", "")


def test_item_keys_of_equal_mappings_are_equal_whatever_the_key_order():
    assert item_key({"code": "X1", "source": "erp"}) == item_key({"source": "erp", "code": "X1"})
    assert item_key({"code": "X1"}) != item_key({"code": "X2"})


def test_a_text_item_key_is_the_text_itself():
    assert item_key("erp:X1") == "erp:X1"
    assert item_key(7) == "7"
