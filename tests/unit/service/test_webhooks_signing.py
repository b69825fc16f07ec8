"""What a webhook delivery is made of: its signature over the timestamp and body, the payload of a
job's event (never the job's text, passwords masked), and the backoff between attempts."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from portl.secrets import MASK
from portl.service.models import Job
from portl.service.webhooks import EVENTS, MAX_ATTEMPTS, backoff_s, encode_body, payload_of, sign

DOCS = Path(__file__).resolve().parents[3] / "docs" / "service.md"
SECRET = "whsec_test-secret-0123456789"
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


def a_job(**changes) -> Job:
    fields = dict(id=uuid.UUID("6f1c2a4e-0000-4000-8000-000000000001"), tenant_id=1, name="people",
                  labels={"team": "billing"}, status="failed", counts={"read": 10, "inserted": 7, "rejected": 3},
                  error=None, job_text="source: {type: postgres, url: 'postgresql://app:hunter2@db.example.com/app'}")
    fields.update(changes)
    return Job(**fields)


def test_the_signature_is_the_hex_hmac_sha256_of_timestamp_dot_body():
    assert sign(SECRET, 1767225600, b'{"event":"ping"}') == \
        "sha256=d7d8599448ef69d80c0182e55abfd28a46af48d093fa514d714943384ebf4172"


def test_a_receiver_verifies_the_signature_with_the_standard_library():
    body = encode_body({"event": "job.failed", "job": {"id": "x"}})

    signature = sign(SECRET, 1767225600, body)

    expected = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, f"sha256={expected}")


@pytest.mark.parametrize("changed", ["secret", "timestamp", "body"])
def test_the_signature_changes_with_the_secret_the_timestamp_and_the_body(changed):
    args = {"secret": SECRET, "timestamp": 1767225600, "body": b'{"event":"ping"}'}
    other = {"secret": SECRET + "x", "timestamp": 1767225601, "body": b'{"event":"pong"}'}[changed]

    assert sign(**{**args, changed: other}) != sign(**args)


def test_the_payload_of_a_job_event_holds_its_id_name_status_counts_error_and_labels():
    payload = payload_of(a_job(error="source unreachable"), "job.failed", {"batch": 4}, WHEN)

    assert payload == {
        "event": "job.failed",
        "job": {"id": "6f1c2a4e-0000-4000-8000-000000000001", "name": "people", "status": "failed",
                "counts": {"read": 10, "inserted": 7, "rejected": 3}, "error": "source unreachable",
                "labels": {"team": "billing"}},
        "occurred_at": "2026-12-01T09:30:00+00:00",
        "details": {"batch": 4},
    }


def test_the_payload_never_holds_the_job_text_or_its_secrets():
    body = encode_body(payload_of(a_job(), "job.succeeded", None, WHEN)).decode()

    assert "hunter2" not in body
    assert "job_text" not in body
    assert "postgres" not in body
    assert json.loads(body)["details"] == {}


def test_passwords_in_the_error_and_the_details_are_masked():
    job = a_job(error="cannot connect to postgresql://app:hunter2@db.example.com/app")

    payload = payload_of(job, "batch.dead_lettered",
                         {"batch": 3, "errors": ["GET https://api.example.com/x?token=s3cret failed"]}, WHEN)

    assert payload["job"]["error"] == f"cannot connect to postgresql://app:{MASK}@db.example.com/app"
    assert payload["details"] == {"batch": 3, "errors": [f"GET https://api.example.com/x?token={MASK} failed"]}


def test_the_body_is_compact_json_that_keeps_non_ascii_text():
    body = encode_body(payload_of(a_job(name="Müller-Kunden"), "job.succeeded", None, WHEN))

    assert b"\xc3\xbc" in body  # ü, as UTF-8 rather than \u00fc
    assert b", " not in body and b": " not in body
    assert json.loads(body)["job"]["name"] == "Müller-Kunden"


def test_the_events_are_the_job_endings_and_a_dead_lettered_batch():
    assert EVENTS == ("job.succeeded", "job.failed", "job.partial", "job.cancelled", "batch.dead_lettered")


def test_the_backoff_doubles_from_one_second():
    assert [backoff_s(n) for n in range(1, MAX_ATTEMPTS)] == [1, 2, 4, 8, 16, 32, 64]


def test_the_backoff_is_capped_at_ten_minutes():
    assert backoff_s(10) == 512
    assert backoff_s(11) == 600
    assert backoff_s(30) == 600


def test_the_backoff_base_and_cap_are_arguments():
    assert [backoff_s(n, base_s=0.05, cap_s=0.3) for n in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.3, 0.3]


def test_a_delivery_is_tried_eight_times_at_most():
    assert MAX_ATTEMPTS == 8


def docs_verifier():
    """The ``is_from_portl`` of the service page's Webhooks section, as a reader would copy it."""
    section = DOCS.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    namespace: dict = {}
    exec(compile(example, str(DOCS), "exec"), namespace)  # noqa: S102  (our own documentation)
    return namespace["is_from_portl"]


def signed_headers(body: bytes, sent_at: int, secret: str = SECRET) -> dict[str, str]:
    return {"X-Portl-Timestamp": str(sent_at), "X-Portl-Signature": sign(secret, sent_at, body)}


def test_the_verification_example_in_the_docs_accepts_a_signed_delivery():
    body = encode_body(payload_of(a_job(), "job.failed", None, WHEN))

    assert docs_verifier()(SECRET, signed_headers(body, int(time.time())), body) is True


def test_the_verification_example_in_the_docs_refuses_a_changed_body_another_secret_and_an_old_timestamp():
    is_from_portl = docs_verifier()
    body = encode_body(payload_of(a_job(), "job.failed", None, WHEN))
    fresh = int(time.time())

    assert is_from_portl(SECRET, signed_headers(body, fresh), body.replace(b"failed", b"succeeded")) is False
    assert is_from_portl(SECRET, signed_headers(body, fresh, secret="another-secret-of-20"), body) is False
    assert is_from_portl(SECRET, signed_headers(body, fresh - 3600), body) is False
    assert is_from_portl(SECRET, {}, body) is False
