"""handler/context.py: what a processor reads of its delivery, and the headers an app behind
the proxy gets for it."""

import pytest

from handler.context import TaskContext, current, serving


def test_the_headers_carry_the_key_and_the_token_as_decimal_digits() -> None:
    assert TaskContext("orders/t", 12).headers() == {
        "X-Task-Idempotency-Id": "orders/t",
        "X-Task-Fencing-Generation": "12",
    }


def test_a_store_with_no_tokens_sends_no_generation_header() -> None:
    assert TaskContext("orders/t", None).headers() == {"X-Task-Idempotency-Id": "orders/t"}


def test_the_context_is_the_delivery_s_only_while_it_is_served() -> None:
    with pytest.raises(LookupError):
        current()
    outer, inner = TaskContext("orders/a", 1), TaskContext("orders/b", 2)
    with serving(outer):
        assert current() == outer
        with pytest.raises(RuntimeError), serving(inner):
            assert current() == inner
            raise RuntimeError("the processor failed")
        assert current() == outer  # restored, though the inner call raised
    with pytest.raises(LookupError):
        current()
