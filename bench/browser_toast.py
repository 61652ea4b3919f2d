"""Third "Save changes" click → toast visible, in Debian's headless Chromium against the real
app (`next start`) and a real `rasa run`, timed inside the page (``performance.now``).

Each run is a new user in a fresh browser context (fresh PostHog session); the first run
warms the app's and the server's caches and is reported apart from the median.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import uuid
from pathlib import Path
from typing import List

from bench.common import ROOT, Figure, Summary, setup_logging, sized
from bench.servers import start_bench_rasa

sys.path.insert(0, str(ROOT / "tests" / "browser"))
from app_flows import edit_priority, save_to_toast_ms, start_toast_clock  # noqa: E402
from app_server import start_app  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

logger = logging.getLogger("bench.browser")


def run() -> List[Figure]:
    from playwright.sync_api import sync_playwright

    runs = sized(7, 5)
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make bench` installs Debian's chromium")
    samples: List[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        workdir = Path(tmp)
        rasa = start_bench_rasa(workdir, proactive_overrides={"driver": {"tick_seconds": 60}})
        app = start_app(workdir, rasa_url=rasa.url)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
                for _ in range(runs + 1):
                    user = f"bench-{uuid.uuid4().hex[:8]}"
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    context.add_cookies([{"name": "demo_user", "value": user, "url": app.url}])
                    page = context.new_page()
                    page.goto(app.url + "/projects")
                    page.wait_for_selector("#rasa-webchat .rw-launcher", timeout=20_000)
                    edit_priority(page, "P-1042", "High")
                    edit_priority(page, "P-1043", "High")
                    start_toast_clock(page)
                    edit_priority(page, "P-1044", "High")
                    samples.append(save_to_toast_ms(page))
                    context.close()
                browser.close()
        finally:
            app.stop()
            rasa.stop()
    warm_up, measured = samples[0], samples[1:]
    summary = Summary.of(measured)
    logger.info("browser save → toast: %s (warm-up %.0f ms)", [round(s, 1) for s in measured], warm_up)
    return [Figure(
        id="browser.save_to_toast_ms", label="browser: third Save click → toast visible (median)", value=summary.p50,
        unit="ms", samples=summary.n, detail={"samples_ms": measured, "warm_up_ms": warm_up, "max_ms": summary.max},
    )]


if __name__ == "__main__":
    from bench.common import print_table

    setup_logging()
    print_table(run())
