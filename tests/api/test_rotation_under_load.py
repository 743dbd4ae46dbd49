"""A provider credential is rotated while concurrent calls run through the gateway: not one
call fails, and traffic moves from the old key to the new one."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import openai
from asgiref.sync import async_to_sync

from providers.models import Credential, CredentialStatus, ProviderKind
from providers.rotation import credential_rotate
from tests.factories import make_key, make_provider, make_route
from tests.fakes.upstream import FakeUpstream

OLD, NEW = "sk-old-key-1111111111111111", "sk-new-key-2222222222222222"
THREADS, CALLS_PER_THREAD = 8, 30


def test_rotation_under_concurrent_load_loses_no_request(cast, live_gateway, settings):
    settings.AIGATEWAY_CONFIG_CACHE_SECONDS = 0.2
    with FakeUpstream(api_key=OLD) as upstream:
        upstream.extra_keys.add(NEW)  # the provider accepts both during the grace period
        provider = make_provider(
            "openai", ProviderKind.OPENAI, upstream.openai_base_url, secret=OLD
        )
        route = make_route("gpt", (provider, "up-model"))
        raw_key = make_key(cast.team, route).raw_key

        outcomes: list[str] = []
        lock = threading.Lock()

        def caller(index: int) -> None:
            client = openai.OpenAI(
                base_url=live_gateway.openai_base_url, api_key=raw_key, max_retries=0, timeout=10
            )
            for call in range(CALLS_PER_THREAD):
                stream = call % 2 == 1
                try:
                    if stream:
                        chunks = client.chat.completions.create(
                            model="gpt",
                            stream=True,
                            messages=[{"role": "user", "content": f"t{index} c{call}"}],
                        )
                        text = "".join(
                            c.choices[0].delta.content or "" for c in chunks if c.choices
                        )
                    else:
                        text = (
                            client.chat.completions.create(
                                model="gpt",
                                messages=[{"role": "user", "content": f"t{index} c{call}"}],
                            )
                            .choices[0]
                            .message.content
                        )
                    result = "ok" if text.endswith(f"t{index} c{call}") else f"wrong: {text}"
                except Exception as exc:
                    result = f"error: {exc!r}"
                with lock:
                    outcomes.append(result)
            client.close()

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        while len(outcomes) < THREADS * CALLS_PER_THREAD // 3:  # rotate a third of the way in
            time.sleep(0.01)
        rotated_at = len(outcomes)
        async_to_sync(credential_rotate)(
            provider=provider, name="new", secret=NEW, grace=timedelta(minutes=10)
        )
        for thread in threads:
            thread.join(timeout=60)
        # The calls may all end within one config-cache window of the rotation (processes
        # learn of it within AIGATEWAY_CONFIG_CACHE_SECONDS): one more call after that.
        time.sleep(settings.AIGATEWAY_CONFIG_CACHE_SECONDS * 2)
        after = openai.OpenAI(
            base_url=live_gateway.openai_base_url, api_key=raw_key, max_retries=0, timeout=10
        )
        after.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "after the rotation"}]
        )
        after.close()

    failures = [o for o in outcomes if o != "ok"]
    keys = [r.headers.get("authorization", "") for r in upstream.requests]
    used_old, used_new = keys.count(f"Bearer {OLD}"), keys.count(f"Bearer {NEW}")
    print(
        f"\nrotation under load: {len(outcomes)} calls ({THREADS} threads), rotated after "
        f"{rotated_at}; failed {len(failures)}; upstream saw old key {used_old}x, new key "
        f"{used_new}x"
    )
    assert len(outcomes) == THREADS * CALLS_PER_THREAD
    assert failures == []
    assert used_old > 0 and used_new > 0
    assert keys[-1] == f"Bearer {NEW}"  # traffic moved to the new key
    assert Credential.objects.get(name="primary").status == CredentialStatus.RETIRING
