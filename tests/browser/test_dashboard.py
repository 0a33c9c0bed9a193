"""The ward dashboard in chromium, served by a monitor_app that a whole running Vigil feeds.

The tests share one system; a test that stops a process starts it again, so any order works.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.integration

TILE_VITALS = {
    "pulse": r"\d+",
    "resp_rate": r"\d+",
    "bp": r"\d+\s*/\s*\d+",
    "spo2": r"\d+",
    "temperature": r"\d+\.\d",
}
CHARTS = ("pulse", "resp_rate", "bp", "spo2", "temperature", "news2_score")
WINDOWS = ("15m", "1h", "6h", "24h")
HIGH_RISK_COLOUR = "rgb(198, 40, 40)"
POSITIVE = re.compile(r"^[1-9]\d*$")
ABNORMAL = re.compile(r"(^|\s)abnormal(\s|$)")

# Marks the page so a test can tell it was never reloaded.
MARK_PAGE = "window.vigilTestMark = true"
PAGE_IS_MARKED = "window.vigilTestMark === true"


def open_ward(page: Page) -> None:
    response = page.goto("/")
    assert response is not None and response.ok, (
        f"GET / answered {response.status if response else 'nothing'}"
    )
    expect(page.locator("#ward")).to_have_attribute("data-loaded", "true")


def tile(page: Page, patient_uuid: str) -> Locator:
    return page.locator(f'#ward a.tile[data-patient-uuid="{patient_uuid}"]')


def vitals_text(locator: Locator) -> str:
    return "|".join(locator.locator("[data-vital]").all_inner_texts())


def wait_for_new_vitals(page: Page, patient_uuid: str, timeout: float = 15_000) -> None:
    """Wait until the tile's vitals read differently from now, without a reload."""
    selector = f'#ward a.tile[data-patient-uuid="{patient_uuid}"] [data-vital]'
    before = vitals_text(tile(page, patient_uuid))
    page.wait_for_function(
        """([selector, before]) => [...document.querySelectorAll(selector)]
               .map(e => e.innerText).join("|") !== before""",
        arg=[selector, before],
        timeout=timeout,
    )


def unread_count(system, page: Page) -> int:
    """The page's unread count, once it agrees with the server's."""
    status, body = system.api("/notifications?read=false&page_size=200")
    assert status == 200, body
    expect(page.locator("#unread-count")).to_have_text(str(len(body)))
    return len(body)


def test_the_ward_shows_every_patient_with_live_values(system, page, screenshot):
    open_ward(page)
    expect(page.locator("#ward a.tile")).to_have_count(len(system.patient_uuids))
    for name, patient_uuid in system.patient_uuids.items():
        patient = tile(page, patient_uuid)
        expect(patient).to_have_attribute("href", f"#/patient/{patient_uuid}")
        expect(patient.locator(".tile-name")).to_have_text(name)
        expect(patient).to_have_attribute("data-score", re.compile(r"^\d+$"))
        expect(patient).to_have_attribute("data-stale", "false")
        expect(patient.locator(".tile-news2")).to_have_text(re.compile(r"\d"))
        for vital, pattern in TILE_VITALS.items():
            expect(patient.locator(f'[data-vital="{vital}"]')).to_have_text(re.compile(pattern))
    for name in system.normal:
        patient = tile(page, system.patient_uuids[name])
        expect(patient).to_have_attribute("data-band", "low")
        # 36.2–37.4 °C, where a normal patient stays, is normal on every chart.
        expect(patient.locator('[data-vital="temperature"]')).not_to_have_class(ABNORMAL)
    wait_for_new_vitals(page, system.patient_uuids[system.normal[0]])
    screenshot()


def test_a_deteriorating_patient_turns_high_risk_and_rises_to_the_top(system, page, screenshot):
    open_ward(page)
    page.evaluate(MARK_PAGE)
    patient_uuid = system.patient_uuids[system.deteriorating]
    patient = tile(page, patient_uuid)
    if not system.deterioration_started:
        expect(patient).to_have_attribute("data-band", "low")
        system.start_deterioration()

    # About 15 s after the change at 0.5 s a sample; the rest is margin.
    expect(patient).to_have_attribute("data-band", "high", timeout=60_000)
    expect(patient.locator(".tile-news2")).to_have_css("background-color", HIGH_RISK_COLOUR)
    assert int(patient.get_attribute("data-score")) >= 7
    expect(page.locator("#ward a.tile").first).to_have_attribute("data-patient-uuid", patient_uuid)
    page.wait_for_function(
        """() => {
            const scores = [...document.querySelectorAll("#ward a.tile")]
                .map(t => Number(t.dataset.score));
            return scores.length > 1 && scores.every((s, i) => i === 0 || scores[i - 1] >= s);
        }""",
        timeout=10_000,
    )
    # Its end state (30 breaths/min, SpO2 88 %) is outside every normal range.
    for vital in ("resp_rate", "spo2"):
        expect(patient.locator(f'[data-vital="{vital}"]')).to_have_class(ABNORMAL, timeout=30_000)

    # The alert data_app raises on reaching the high band ("<name>: NEWS2 <n>, high risk"),
    # analysed by the worker (so its category is known), then shown without a reload.
    title = page.locator(
        ".notification-title", has_text=re.compile(f"{system.deteriorating}.*high risk")
    )
    alert = (
        page.locator(
            '#notification-list .notification[data-category="critical"][data-read="false"]'
        )
        .filter(has=title)
        .first
    )
    expect(alert).to_be_visible(timeout=30_000)
    expect(alert.locator("button.mark-read")).to_be_visible()
    expect(page.locator("#unread-count")).to_have_text(re.compile(r"^\s*[1-9]\d*\s*$"))
    assert page.evaluate(PAGE_IS_MARKED), "the page was reloaded"
    screenshot()


def test_marking_a_notification_read_lowers_the_unread_count_for_good(
    system, page, screenshot, critical_alert
):
    open_ward(page)
    item = page.locator(f'#notification-list .notification[data-id="{critical_alert}"]')
    expect(item).to_have_attribute("data-read", "false")
    expect(item).to_have_attribute("data-category", "critical")
    before = unread_count(system, page)
    assert before > 0

    item.locator("button.mark-read").click()
    expect(item).to_have_attribute("data-read", "true")
    expect(item.locator("button.mark-read")).to_have_count(0)
    expect(page.locator("#unread-count")).to_have_text(str(before - 1))
    status, body = system.api(f"/notifications/{critical_alert}")
    assert status == 200 and body["read_at"], body
    screenshot()

    page.reload()
    expect(page.locator("#ward")).to_have_attribute("data-loaded", "true")
    expect(item).to_have_attribute("data-read", "true")
    expect(item.locator("button.mark-read")).to_have_count(0)
    expect(page.locator("#unread-count")).to_have_text(str(before - 1))


def test_the_patient_view_charts_every_vital_over_each_window(
    system, page, screenshot, critical_alert
):
    open_ward(page)
    patient_uuid = system.patient_uuids[system.deteriorating]
    tile(page, patient_uuid).click()
    expect(page).to_have_url(re.compile(f"#/patient/{patient_uuid}$"))
    view = page.locator("#patient-view")
    expect(view).to_be_visible()
    expect(page.locator("#patient-name")).to_contain_text(system.deteriorating)

    def expect_every_chart_drawn() -> None:
        for vital in CHARTS:
            chart = view.locator(f'.chart[data-vital="{vital}"]')
            expect(chart.locator("canvas").first).to_be_visible()
            expect(chart).to_have_attribute("data-points", POSITIVE)

    expect_every_chart_drawn()
    expect(page.locator('button.window[aria-pressed="true"]')).to_have_count(1)
    for window in (*WINDOWS[1:], WINDOWS[0]):
        button = page.locator(f'button.window[data-window="{window}"]')
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
        for other in WINDOWS:
            if other != window:
                expect(page.locator(f'button.window[data-window="{other}"]')).not_to_have_attribute(
                    "aria-pressed", "true"
                )
        expect_every_chart_drawn()
    expect(
        page.locator(f'#patient-notifications .notification[data-id="{critical_alert}"]')
    ).to_be_visible()
    screenshot()

    page.go_back()
    expect(view).to_be_hidden()
    expect(page.locator("#ward")).to_be_visible()


def test_the_live_indicator_follows_the_socket_through_a_monitor_restart(system, page, screenshot):
    open_ward(page)
    page.evaluate(MARK_PAGE)
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_attribute("data-state", "live")

    system.stop_monitor()
    try:
        expect(indicator).to_have_attribute(
            "data-state", re.compile(r"^(disconnected|connecting)$")
        )
        screenshot("disconnected")
    finally:
        system.start_monitor()
    expect(indicator).to_have_attribute("data-state", "live", timeout=30_000)
    # Live again means samples flow again, into the same page.
    wait_for_new_vitals(page, system.patient_uuids[system.normal[0]])
    assert page.evaluate(PAGE_IS_MARKED), "the page was reloaded"
    screenshot()


def test_a_patient_whose_monitor_stops_sending_goes_stale(system, page, screenshot):
    open_ward(page)
    other, silent = (system.patient_uuids[name] for name in system.normal)
    expect(tile(page, silent)).to_have_attribute("data-stale", "false")

    system.stop_patient(system.normal[1])
    try:
        # Three 0.5 s intervals without a sample, plus the last one on its way.
        expect(tile(page, silent)).to_have_attribute("data-stale", "true")
        expect(tile(page, other)).to_have_attribute("data-stale", "false")
        screenshot()
    finally:
        system.start_patient(system.normal[1])
    # Samples again: the tile is live again, without a reload.
    expect(tile(page, silent)).to_have_attribute("data-stale", "false")
