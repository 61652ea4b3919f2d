"""The toast itself: dismiss with ×, with Esc, by keyboard; auto-dismiss that pauses on hover."""

from typing import Callable

from playwright.sync_api import Page, expect

from app_flows import TOAST_DISMISS_MS, edit_priority, toast


def show_toast(open_app: Callable[..., Page], user_id: str) -> Page:
    page = open_app(user_id)
    for project_id in ("P-1046", "P-1047", "P-1048"):
        edit_priority(page, project_id, "Medium")
    expect(toast(page)).to_be_visible(timeout=5000)
    return page


def test_close_button_dismisses_the_toast(open_app: Callable[..., Page], user_id: str) -> None:
    page = show_toast(open_app, user_id)
    page.get_by_role("button", name="Dismiss suggestion").click()
    expect(toast(page)).to_have_count(0)


def test_toast_is_reachable_by_keyboard_and_esc_dismisses_it(open_app: Callable[..., Page], user_id: str) -> None:
    page = show_toast(open_app, user_id)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('.toast')"):
            break
    else:
        raise AssertionError("Tab never reached the toast")
    page.keyboard.press("Escape")
    expect(toast(page)).to_have_count(0)


def test_esc_dismisses_the_toast_without_focusing_it(open_app: Callable[..., Page], user_id: str) -> None:
    page = show_toast(open_app, user_id)
    page.keyboard.press("Escape")
    expect(toast(page)).to_have_count(0)


def test_hovering_pauses_the_auto_dismiss_and_leaving_resumes_what_was_left(open_app: Callable[..., Page], user_id: str) -> None:
    page = show_toast(open_app, user_id)
    page.mouse.move(10, 400)
    page.wait_for_timeout(TOAST_DISMISS_MS * 2 // 3)  # two thirds of the countdown pass unattended
    page.hover(".toast-region .toast")
    page.wait_for_timeout(TOAST_DISMISS_MS)
    expect(toast(page)).to_be_visible()  # hovered past the full duration: paused

    page.mouse.move(10, 400)
    page.wait_for_timeout(TOAST_DISMISS_MS // 6)
    expect(toast(page)).to_be_visible()  # not expired the moment the pointer leaves
    # About a third was left; a countdown restarted from the full duration would still show it.
    expect(toast(page)).to_have_count(0, timeout=TOAST_DISMISS_MS * 2 // 3)


def test_an_unattended_toast_dismisses_itself(open_app: Callable[..., Page], user_id: str) -> None:
    page = show_toast(open_app, user_id)
    page.mouse.move(10, 400)
    expect(toast(page)).to_have_count(0, timeout=TOAST_DISMISS_MS + 3000)
