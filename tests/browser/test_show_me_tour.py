"""Path A: three one-by-one edits → toast → "Show me" → the four-step tour → bulk edit done."""

from pathlib import Path
from typing import Callable

from playwright.sync_api import Page, expect

from app_flows import (
    TOAST_BODY, TOAST_SHOWN, TOUR_TEXTS, OfferCounts, edit_priority, log_lines, priority_of, save_to_toast_ms, settle_animations,
    start_toast_clock, toast, wait_for_log,
)
from rasa_server import RasaServer


def test_three_edits_show_toast_and_show_me_runs_the_tour_to_a_bulk_update(
    open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str, artifacts: Path, offer_counts: OfferCounts
) -> None:
    page = open_app(user_id)
    edit_priority(page, "P-1043", "Low")
    edit_priority(page, "P-1044", "High")
    expect(toast(page)).to_have_count(0)
    start_toast_clock(page)
    edit_priority(page, "P-1045", "Urgent")

    expect(toast(page)).to_be_visible(timeout=5000)
    print(f"\nthird Save click → toast visible: {save_to_toast_ms(page):.0f} ms")
    expect(toast(page).locator(".toast-body")).to_have_text(TOAST_BODY)
    expect(page.locator(".rw-widget-container")).not_to_have_class("rw-chat-open")  # chat still closed
    expect(page.locator(".toast-region")).to_have_attribute("role", "status")
    expect(page.locator(".toast-region")).to_have_attribute("aria-live", "polite")
    settle_animations(page)
    page.screenshot(path=str(artifacts / "toast.png"))

    page.click("#toast-show-me")
    expect(toast(page)).to_have_count(0)
    popover = page.locator(".driver-popover-description")

    expect(popover).to_have_text(TOUR_TEXTS[0])
    page.click("#projects-table-options")  # the ⋯ menu renders its items in a portal

    expect(popover).to_have_text(TOUR_TEXTS[1])
    page.click("#projects-bulk-edit-toggle")

    expect(popover).to_have_text(TOUR_TEXTS[2])
    page.click("#project-checkbox-P-1042")

    expect(popover).to_have_text(TOUR_TEXTS[3])
    page.click("#project-checkbox-P-1047")  # more rows can still be ticked in the last step
    page.select_option("#bulk-priority", "Urgent")
    settle_animations(page)
    page.screenshot(path=str(artifacts / "tour-step-4.png"))
    page.click("#bulk-apply")

    expect(page.locator(".driver-popover")).to_have_count(0)
    assert priority_of(page, "P-1042") == "Urgent"
    assert priority_of(page, "P-1047") == "Urgent"
    assert priority_of(page, "P-1048") == "Urgent"  # seeded Urgent, untouched
    assert priority_of(page, "P-1049") == "Low"  # not selected: unchanged
    expect(page.locator("#project-checkbox-P-1042")).to_have_count(0)  # bulk mode is over

    # The server followed the tour: start, one step per click, end; in that order.
    wait_for_log(rasa_server, rf"proactive tour ended: tour=bulk_edit_tour user={user_id}\b")
    events = [
        line.split("proactive tour ")[1].split(":")[0]
        for line in log_lines(rasa_server, rf"proactive tour \w+: .*user={user_id}\b")
    ]
    assert events == ["started", "step", "step", "step", "step", "ended"]
    firing = log_lines(rasa_server, rf"proactive (trigger firing|offer published|tour started).*user={user_id}\b")
    assert [line.split("proactive ")[1].split(":")[0] for line in firing] == [
        "trigger firing", "offer published", "tour started"
    ]
    # The funnel: shown, Show me, every step, completed; "Apply to 2" is the faster way, adopted.
    offer_counts.expect({
        **TOAST_SHOWN, "stages.show_me": 1, "stages.tour_completed": 1, "stages.adopted": 1,
        "adoption.shown.adopted": 1, **{f"tour.steps.{n}": 1 for n in range(1, 5)},
    })


def test_closing_the_tour_early_ends_it_on_the_server(
    open_app: Callable[..., Page], rasa_server: RasaServer, user_id: str, offer_counts: OfferCounts
) -> None:
    page = open_app(user_id)
    for project_id in ("P-1050", "P-1051", "P-1052"):
        edit_priority(page, project_id, "High")
    page.click("#toast-show-me")
    expect(page.locator(".driver-popover-description")).to_have_text(TOUR_TEXTS[0])
    page.click("#projects-table-options")
    expect(page.locator(".driver-popover-description")).to_have_text(TOUR_TEXTS[1])
    page.keyboard.press("Escape")

    expect(page.locator(".driver-popover")).to_have_count(0)
    wait_for_log(rasa_server, rf"proactive tour ended: tour=bulk_edit_tour user={user_id}\b")
    assert len(log_lines(rasa_server, rf"proactive tour step: .*user={user_id}\b")) == 1
    offer_counts.expect({
        **TOAST_SHOWN, "stages.show_me": 1, "stages.tour_abandoned": 1, "tour.steps.1": 1,
        "tour.abandoned.closed": 1, "tour.abandoned_at_step.2": 1,
    }, tour_abandoned=("closed", 2))
