"""The pure rules behind webhooks: the Standard Webhooks signature, the retry schedule, which URLs may be used."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from batchgate.domain import webhook_signature
from batchgate.domain.status import BatchStatus
from batchgate.domain.webhooks import DeliveryPolicy, event_type, url_problem
from batchgate.worker.public_resolver import PublicResolver

# The example in the Standard Webhooks reference implementations' own tests.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_example() -> None:
    assert webhook_signature.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    lib = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(TIMESTAMP, UTC), BODY.decode())
    assert lib == EXPECTED


def test_new_secrets_verify_with_the_reference_library() -> None:
    secret = webhook_signature.new_secret()
    assert secret.startswith("whsec_") and secret != webhook_signature.new_secret()
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_signature.headers(secret, "msg_1", now, b'{"a":1}')
    assert Webhook(secret).verify(b'{"a":1}', headers) == {"a": 1}


def test_events_name_terminal_statuses_only() -> None:
    assert [event_type(s) for s in (BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED,
                                    BatchStatus.CANCELLED)] == [
        "batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]
    with pytest.raises(ValueError):
        event_type(BatchStatus.CANCELLING)


def test_default_schedule_backs_off_for_about_three_days() -> None:
    policy = DeliveryPolicy()
    plain = [policy.delay(n, random.Random(0)) for n in range(1, policy.max_attempts)]
    assert 3.75 <= plain[0] <= 6.25 and 22.5 <= plain[1] <= 37.5 and 135 <= plain[2] <= 225
    assert max(plain) <= policy.max_seconds * 1.25
    assert 2.5 * 86400 < sum(plain) < 4 * 86400
    assert not policy.gives_up_after(policy.max_attempts - 1) and policy.gives_up_after(policy.max_attempts)
    assert DeliveryPolicy(max_attempts=10_000).delay(5_000) <= 6 * 3600 * 1.25  # no overflow


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://example.com/x?y=1", "http://[::1]/h",
                                 "http://10.0.0.5/h", "HTTPS://Example.COM"])
def test_http_urls_are_fine_when_private_addresses_are_allowed(url: str) -> None:
    assert url_problem(url, allow_private=True) is None


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)", "http://",
                                 "example.com/hook", "http://exa mple.com", "http://a.com/\n", "http://a.com:0x50/"])
def test_other_urls_are_never_fine(url: str) -> None:
    assert url_problem(url, allow_private=True) is not None
    assert url_problem(url, allow_private=False) is not None


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://localhost:80/", "http://app.localhost/",
                                 "http://10.1.2.3/", "http://192.168.0.1/", "http://169.254.169.254/latest",
                                 "http://[::1]/", "http://[fd00::1]/", "http://0.0.0.0/"])
def test_private_addresses_can_be_refused(url: str) -> None:
    assert url_problem(url, allow_private=False) is not None
    assert url_problem("https://example.com/hook", allow_private=False) is None


def test_public_resolver_refuses_names_of_private_addresses() -> None:
    async def go() -> None:
        resolver = PublicResolver()
        try:
            with pytest.raises(OSError, match="private or loopback"):
                await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    asyncio.run(go())
