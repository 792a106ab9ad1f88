"""The explorer page in a real browser: headless Debian Chromium driven by Playwright, over the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from serving_stack import Stack
from serving_support import TYPE_A, exact_top, item_id, metadata

from contract.filters import matches, parse_filter

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
TIMEOUT_MS = 15_000


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A fresh Chromium profile and page; a missing browser is a failure (`make browser` installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _title(iid: str) -> str:
    return str(metadata(int(iid) - 1000)["title"])


def _column(page: Page, table: str, col: str) -> list[str]:
    return page.locator(f"#{table} tbody td[data-col={col}]").all_inner_texts()


def test_explorer_shows_recommendations_history_and_versions(stack: Stack, page: Page) -> None:
    v1, v2 = (v.name for v in stack.world.versions)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The key in the fragment, as the demo prints the URL; the page sends it as a header.
    page.goto(stack.serving.url + f"/#key={stack.settings.admin_keys[0].get_secret_value()}")
    # Taken out of the address bar (and so out of a copied link) once the page has it.
    expect(page).to_have_url(stack.serving.url + "/")

    # Versions per type, and the audit entry of the in_use change the indexer made.
    types = page.locator("#types-table tbody tr")
    expect(types).to_have_count(1)
    expect(types.locator("td[data-col=type]")).to_have_text(TYPE_A)
    expect(types.locator("td[data-col=latest]")).to_have_text(v2)
    expect(types.locator("td[data-col=in_use]")).to_contain_text(v1)
    expect(types.locator("td[data-col=indexed]")).to_contain_text(v2)
    audit = page.locator("#audit-table tbody tr")
    expect(audit).to_have_count(1)
    expect(audit.locator("td[data-col=to]")).to_have_text(v1)
    expect(audit.locator("td[data-col=from]")).to_have_text("none")
    expect(audit.locator("td[data-col=reason]")).to_have_text("test")

    # Recommendations for a user, by label as a person would.
    page.get_by_label("User id", exact=True).fill("u3")
    page.get_by_label("Embedding type", exact=True).select_option(TYPE_A)
    page.get_by_role("button", name="Recommend").click()
    seen = stack.world.profiles["u3"]
    expected = exact_top(stack.world, v1, "u3", 10, set(seen))
    rows = page.locator("#recs tbody tr")
    expect(rows).to_have_count(10)
    assert _column(page, "recs", "title") == [_title(i) for i in expected]
    assert set(_column(page, "recs", "scorer")) == {"embedding"}
    assert set(_column(page, "recs", "version")) == {v1}
    expect(page.locator("#summary")).to_contain_text(f"version {v1}")

    # The user's history beside them, newest first.
    history = page.locator("#history-table tbody tr")
    expect(history).to_have_count(len(seen))
    assert _column(page, "history-table", "title") == [_title(i) for i in reversed(seen)]

    # The filter inputs and the columns come from the item schema (GET /v1/item-schema).
    expect(page.locator("#recs thead th")).to_have_text(
        ["#", "Title", "Authors", "Year", "Language", "Average rating", "Tags", "Score", "Scorer", "Version"]
    )
    expect(page.get_by_label("Ratings count from")).to_be_visible()

    # Filters become a contract filter tree the API honours.
    page.get_by_label("Language, any of (comma-separated)").fill("fre")
    page.get_by_label("Average rating from").fill("3.5")
    page.get_by_label("Year from").fill("2000")
    page.get_by_role("button", name="Recommend").click()
    tree = parse_filter(
        {
            "op": "and",
            "children": [
                {"op": "in", "field": "language", "values": ["fre"]},
                {"op": "range", "field": "year", "gte": 2000},
                {"op": "range", "field": "average_rating", "gte": 3.5},
            ],
        }
    )
    filtered = exact_top(stack.world, v1, "u3", 10, set(seen), lambda m: matches(tree, m))
    expect(page.locator("#recs tbody tr td[data-col=title]").first).to_have_text(_title(filtered[0]))
    assert _column(page, "recs", "title") == [_title(i) for i in filtered]
    assert set(_column(page, "recs", "language")) == {"fre"}
    expect(page.locator("#error")).to_be_hidden()

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "explorer.png"), full_page=True)

    # Attributes instead of a user: the items named are not recommended back.
    page.get_by_label("attributes", exact=True).check()
    for label in ("Language, any of (comma-separated)", "Average rating from", "Year from"):
        page.get_by_label(label).fill("")
    named = {item_id(3), item_id(4)}
    page.get_by_label("Attributes, one per line").fill(f"item:{item_id(3)} 2\nitem:{item_id(4)}=1")
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator("#history-summary")).to_have_text("Attributes query: no stored history.")
    expect(rows).to_have_count(10)
    assert not {_title(i) for i in named} & set(_column(page, "recs", "title"))
    assert set(_column(page, "recs", "version")) == {v1}

    # An API error is shown in the page with its name and the field it names.
    page.get_by_label("Attributes, one per line").fill("fantasy 2")
    page.get_by_role("button", name="Recommend").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("InvalidField")
    expect(alert).to_contain_text("attributes[0].id")
    expect(rows).to_have_count(0)
    page.screenshot(path=str(OUTPUT / "explorer-error.png"), full_page=True)
    assert errors == []
