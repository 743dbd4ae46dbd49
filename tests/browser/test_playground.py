"""The playground in headless Chromium: the answer grows as tokens arrive, Stop halts it
(and the upstream sees the connection dropped), compare mode, the quota sentence, and model
output that tries to inject HTML or script stays inert text."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from aigateway.quotas.models import Limit
from tests.browser.conftest import save_screenshot, sign_in
from tests.fakes.upstream import FakeUpstream
from tests.playground.support import UPSTREAM_KEY, build_world

WORDS = " ".join(f"word{i}" for i in range(27))  # the echo has 30 words: 30 chunks, 50 ms apart


@pytest.fixture
def slow_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY, chunk_delay=0.05) as fake:
        yield fake


def _open(page, cast, upstream) -> None:
    build_world(cast, upstream)
    sign_in(page, "carol", "pw-carol-secret")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.wait_for_url("**/playground/")


def _lengths(locator, page, samples: int, every_ms: int) -> list[int]:
    lengths = []
    for _ in range(samples):
        lengths.append(len(locator.inner_text()))
        page.wait_for_timeout(every_ms)
    return lengths


@pytest.mark.django_db(transaction=True)
def test_the_answer_grows_as_tokens_arrive_and_ends_with_its_facts(page, cast, slow_upstream):
    _open(page, cast, slow_upstream)
    page.get_by_label("System prompt").fill("Answer briefly.")
    page.get_by_label("Message 1", exact=True).fill(WORDS)
    page.get_by_label("Message 1", exact=True).press("Control+Enter")
    answer = page.locator(".pg-answer-text")
    page.wait_for_function("() => document.querySelector('.pg-answer-text')?.innerText.length > 0")
    lengths = _lengths(answer, page, samples=6, every_ms=120)
    assert all(b >= a for a, b in itertools.pairwise(lengths)), lengths
    assert len(set(lengths)) >= 4, f"the text should grow while streaming: {lengths}"
    assert lengths[-1] < len("Echo from up-model: " + WORDS)  # still streaming when sampled
    meta = page.locator(".pg-meta")
    meta.wait_for(state="visible")
    assert answer.inner_text() == "Echo from up-model: " + WORDS
    facts = meta.inner_text()
    assert "fake-openai / up-model (deployment #" in facts
    for label in ("Failovers", "Latency", "Time to first token", "Tokens", "Cost", "Cache"):
        assert label in facts
    assert "none" in facts and "30 out" in facts
    assert meta.locator("code").inner_text().startswith("req_")
    # The conversation carries on: the answer became the assistant's turn.
    carried = page.get_by_label("Message 2", exact=True).input_value()
    assert carried == "Echo from up-model: " + WORDS
    assert page.get_by_label("Role of message 2").input_value() == "assistant"
    assert page.console_errors == []
    save_screenshot(page, "playground")


@pytest.mark.django_db(transaction=True)
def test_stop_halts_the_answer_and_the_upstream_sees_the_disconnect(page, cast, slow_upstream):
    _open(page, cast, slow_upstream)
    page.get_by_label("Message 1", exact=True).fill(WORDS)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function("() => document.querySelector('.pg-answer-text')?.innerText.length > 40")
    page.get_by_role("button", name="Stop").click()
    page.locator(".pg-answer[data-state='stopped']").wait_for()
    answer = page.locator(".pg-answer-text")
    lengths = _lengths(answer, page, samples=5, every_ms=150)
    assert len(set(lengths)) == 1, f"the text should stop growing: {lengths}"
    assert lengths[0] < len("Echo from up-model: " + WORDS)
    page.wait_for_function("() => true", timeout=100)
    deadline_ms = 5000
    while not slow_upstream.streams_cut and deadline_ms > 0:
        page.wait_for_timeout(100)
        deadline_ms -= 100
    cut = slow_upstream.streams_cut
    assert cut and cut[0].frames_sent < cut[0].frames_total
    assert page.get_by_role("button", name="Send").is_enabled()
    assert page.locator("#pg-status").inner_text() == "Stopped."


@pytest.mark.django_db(transaction=True)
def test_compare_mode_streams_two_routes_side_by_side(page, cast, slow_upstream):
    _open(page, cast, slow_upstream)
    page.get_by_label("Compare with a second route").check()
    page.get_by_label("Second route", exact=True).select_option("other")
    page.get_by_label("Message 1", exact=True).fill("side by side")
    page.get_by_role("button", name="Send").click()
    page.locator(".pg-answer[data-state='done']").nth(1).wait_for()
    answers = page.locator(".pg-answer-text").all_inner_texts()
    assert answers == ["Echo from up-model: side by side", "Echo from other-model: side by side"]
    assert page.locator(".pg-answers.pg-compare .pg-meta:visible").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_exceeded_quota_shows_a_sentence_with_the_reset_time(page, cast, slow_upstream):
    _open(page, cast, slow_upstream)
    Limit.objects.create(scope="team", scope_id=cast.team.pk, kind="rpm", value=1)
    page.get_by_label("Message 1", exact=True).fill("first")
    page.get_by_role("button", name="Send").click()
    page.locator(".pg-answer[data-state='done']").wait_for()
    page.get_by_label("Message 3", exact=True).fill("second")
    page.get_by_role("button", name="Send").click()
    error = page.locator(".pg-answer-error")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert text.startswith("Quota exceeded: Limit reached for requests per minute on team")
    assert "It resets in" in text and "UTC" in text and "Traceback" not in text


@pytest.mark.django_db(transaction=True)
def test_model_output_cannot_inject_script_or_html(page, cast, slow_upstream):
    _open(page, cast, slow_upstream)
    attack = (
        '<script>window.__xss=1</script> <img src=x onerror="window.__xss=2"> '
        "**bold** `code` [ok](https://example.com/docs) [bad](javascript:window.__xss=3)"
    )
    page.get_by_label("Message 1", exact=True).fill(attack)
    page.get_by_role("button", name="Send").click()
    page.locator(".pg-answer[data-state='done']").wait_for()
    answer = page.locator(".pg-answer-text")
    text = answer.inner_text()
    assert "<script>window.__xss=1</script>" in text  # shown as text
    assert '<img src=x onerror="window.__xss=2">' in text
    assert page.evaluate("window.__xss") is None
    assert page.locator(".pg-answers script, .pg-answers img, img[src='x']").count() == 0
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator("code").inner_text() == "code"
    links = answer.locator("a")
    assert links.count() == 1
    assert links.get_attribute("href") == "https://example.com/docs"
    assert links.get_attribute("rel") == "noopener noreferrer nofollow"
    assert "[bad](javascript:window.__xss=3)" in text
    page.locator(".pg-answer-text a").hover()  # nothing fires on interaction either
    assert page.evaluate("window.__xss") is None
    assert page.console_errors == []


MARKDOWN = """# Title
Some *soft* and **hard** words, `inline <b>code</b>`.

- one [site](http://example.org)
- two [js](javascript:alert(1))

1. first
2. second

```html
<script>window.__xss=4</script>
```
<iframe src="https://evil.example"></iframe>"""


@pytest.mark.django_db(transaction=True)
def test_the_markdown_renderer_builds_only_safe_elements(page, cast, slow_upstream):
    """Multi-line Markdown (the fake's echo flattens whitespace, so it is rendered directly)."""
    _open(page, cast, slow_upstream)
    html = page.evaluate(
        """async (text) => {
            const { renderMarkdown } = await import('/static/js/markdown.js');
            const box = document.createElement('div');
            box.append(renderMarkdown(text));
            document.body.append(box);
            return box.innerHTML;
        }""",
        MARKDOWN,
    )
    assert "<h3>Title</h3>" in html
    assert "<em>soft</em>" in html and "<strong>hard</strong>" in html
    assert "<code>inline &lt;b&gt;code&lt;/b&gt;</code>" in html
    link = '<a href="http://example.org" rel="noopener noreferrer nofollow" target="_blank">'
    assert link + "site</a>" in html
    assert "[js](javascript:alert(1))" in html and "javascript:" not in html.split("[js]")[0]
    assert "<ol><li>first</li><li>second</li></ol>" in html
    code = '<pre><code class="language-html">&lt;script&gt;window.__xss=4&lt;/script&gt;'
    assert code + "</code></pre>" in html
    assert "<iframe" not in html and "&lt;iframe" in html
    assert page.evaluate("window.__xss") is None
    assert page.locator("iframe").count() == 0
