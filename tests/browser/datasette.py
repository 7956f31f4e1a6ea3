"""Loads Datasette's pages for the synced database in headless Chromium, as an analyst would,
and fails when a page errors, a table or canned query shows no rows, or a dashboard chart has no
data. Keeps a screenshot of each page.

Usage: datasette.py BASE_URL DATABASE SCREENSHOT_DIR
Exit 0 when every page is right; otherwise one line per fault on stderr and exit 1.
Called by tests/it/datasette.rs, which starts Datasette; needs the `playwright` package (its
driver only: the browser is Debian's /usr/bin/chromium, or $CHROMIUM).
"""

import json
import os
import sys
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import sync_playwright

# Without the background-networking flags Chromium keeps dialling Google's hosts, which a
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def check(base, db, shots):
    faults = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
        page.on(
            "console",
            lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on(
            "response",
            lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None,
        )

        def visit(name, path):
            errors.clear()
            response = page.goto(base + path, wait_until="networkidle")
            if response is None or response.status != 200:
                faults.append(f"{name}: {path} answered {response and response.status}")
            return response

        def finish(name, clip_height=None):
            clip = clip_height and {"x": 0, "y": 0, "width": 1400, "height": clip_height}
            page.screenshot(
                path=os.path.join(shots, f"datasette-{name}.png"), full_page=True, clip=clip
            )
            faults.extend(f"{name}: {e}" for e in errors)

        # The bookings table: described columns, facets, rows.
        visit("table", f"/{db}/bookings")
        rows = page.locator("table.rows-and-columns tbody tr").count()
        if rows == 0:
            faults.append("table: the bookings page shows no rows")
        if page.locator(".facet-info").count() == 0:
            faults.append("table: the bookings page offers no facet")
        described = page.locator("th.col-status").get_attribute("data-column-description") or ""
        if "ACTIVE" not in described:
            faults.append(f"table: the status column is not described ({described!r})")
        # raw_json is cut short (--setting truncate_cells_html): the row's page shows it whole.
        longest = page.eval_on_selector_all(
            "td.col-raw_json", "cells => Math.max(0, ...cells.map(c => c.innerText.length))"
        )
        if not 0 < longest <= 100:
            faults.append(f"table: raw_json cells are {longest} characters, not cut short")
        finish("table", clip_height=2400)  # the descriptions, then the first rows

        # One canned query, titled with its question.
        visit("query", f"/{db}/top_experiences")
        if "?" not in (page.locator("h1").first.inner_text()):
            faults.append("query: the canned query's title is not its question")
        if page.locator("table.rows-and-columns tbody tr").count() == 0:
            faults.append("query: top_experiences shows no rows")
        finish("query")

        # The dashboard: every chart's data comes from one JSON request; each must hold rows.
        answers = {}

        def keep(response):
            url = urlparse(response.url)
            if url.path == f"/{db}.json" and "sql" in parse_qs(url.query):
                try:
                    answers[parse_qs(url.query)["sql"][0]] = response.json()
                except Exception as e:  # noqa: BLE001 - any unreadable answer is a fault
                    faults.append(f"dashboard: unreadable chart data from {response.url}: {e}")

        page.on("response", keep)
        visit("dashboard", "/-/dashboards/understory")
        page.wait_for_timeout(1500)  # vega-embed draws after its data arrives
        charts = page.locator("[id^=chart-]:not([id^=chart-tooltip])")
        expected = charts.count()
        if expected < 6:
            faults.append(f"dashboard: {expected} charts on the page")
        if len(answers) < expected:
            faults.append(f"dashboard: {len(answers)} chart queries answered for {expected} charts")
        for sql, answer in answers.items():
            first = sql.strip().splitlines()[0]
            if not answer.get("ok", False):
                faults.append(f"dashboard: {first}: {answer.get('error')}")
            elif not answer.get("rows"):
                faults.append(f"dashboard: {first}: no data")
        for i in range(expected):
            chart = charts.nth(i)
            slug = chart.get_attribute("id")
            if chart.locator("svg, canvas").count() > 0:
                continue
            # A metric card: its one figure, read from its query's first row.
            metric = chart.locator("p")
            text = metric.first.inner_text().strip() if metric.count() else ""
            if text in ("", "undefined", "null"):
                faults.append(f"dashboard: chart {slug} drew nothing ({text!r})")
        finish("dashboard")
        browser.close()
    return faults


def main():
    base, db, shots = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(shots, exist_ok=True)
    faults = check(base, db, shots)
    for f in faults:
        print(f, file=sys.stderr)
    print(json.dumps({"faults": len(faults)}))
    sys.exit(1 if faults else 0)


if __name__ == "__main__":
    main()
