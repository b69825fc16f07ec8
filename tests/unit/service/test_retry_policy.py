"""Which failures of a submitted job's batch are tried again."""

from portl.errors import ChecksFailed, ConflictError, TerminalError, TransientError
from portl.service.retrypolicy import DEFAULT_POLICY, Policy


def test_the_default_retries_transient_failures_only():
    assert DEFAULT_POLICY.retries(TransientError("connection dropped"))
    assert not DEFAULT_POLICY.retries(TerminalError("bad password"))


def test_failed_quality_checks_are_never_retried_even_under_retry_on_any():
    anything = Policy(retry_on=("any",))
    assert anything.retries(ConflictError("sales", ["id"], [(1,)]))
    assert not anything.retries(ChecksFailed("1 critical quality check failed", loaded=True))
