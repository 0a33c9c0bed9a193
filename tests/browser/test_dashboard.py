"""The ward dashboard in chromium, served by a monitor_app that a whole running Vigil feeds.

The tests share one system; a test that stops a process starts it again, so any order works.
Each signs in through the login page (`page`), or starts anonymous to test signing in.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Locator, Page, Response, expect
from sqlalchemy.orm import sessionmaker

from monitor_app.auth import services
from shared.auth.roles import Role
from shared.db import make_engine
from tests.helpers import serving

pytestmark = pytest.mark.integration

TILE_VITALS = {
    "pulse": r"\d+",
    "resp_rate": r"\d+",
    "bp": r"\d+\s*/\s*\d+",
    "spo2": r"\d+",
    "temperature": r"\d+\.\d",
}
CHARTS = ("pulse", "resp_rate", "bp", "spo2", "temperature", "news2_score")
WINDOWS = ("15m", "1h", "6h", "24h", "7d", "30d")
HIGH_RISK_COLOUR = "rgb(198, 40, 40)"
POSITIVE = re.compile(r"^[1-9]\d*$")
ABNORMAL = re.compile(r"(^|\s)abnormal(\s|$)")

# Whether the patient view's CSV link covers a window of `arg` milliseconds.
LINK_SPANS_MS = """(span) => {
  const query = new URL(document.querySelector("#samples-csv").href, location.href).searchParams;
  return Date.parse(query.get("to")) - Date.parse(query.get("from")) === span;
}"""

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


def open_patient(page: Page, patient_uuid: str, seconds: float = 10.0) -> None:
    """Open the patient's view from their tile, as a clinician does: a click again if the
    first is lost. ward.js redraws a tile whenever its patient's samples arrive, and a click
    whose press and release straddle a redraw does nothing."""
    url = re.compile(f"#/patient/{patient_uuid}$")
    deadline = time.monotonic() + seconds
    while True:
        tile(page, patient_uuid).click()
        try:
            expect(page).to_have_url(url, timeout=2_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


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
    open_patient(page, patient_uuid)
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


# -- signing in -----------------------------------------------------------------------------
LOGIN_URL = re.compile(r"/login\?next=")
# Opens a WebSocket from the page's own origin; resolves with what came through and the close.
OPEN_STREAM = """(url) => new Promise((resolve) => {
    const socket = new WebSocket(url);
    const messages = [];
    socket.onmessage = (message) => { messages.push(message.data); socket.close(); };
    socket.onclose = (event) => resolve({ code: event.code, messages });
})"""


def test_an_anonymous_visit_signs_in_and_out_through_the_login_page(
    system, anonymous_page, screenshot
):
    page = anonymous_page
    account = system.account(Role.ADMIN)
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.locator("#login-form")).to_be_visible()
    # Nothing of the ward was served to get here.
    expect(page.locator("#ward")).to_have_count(0)
    screenshot("login")

    page.locator("#email").fill(account.email)
    page.locator("#password").fill("not the password at all")
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#login-error")).to_have_text(re.compile("Wrong email or password"))
    expect(page.locator("#email")).to_have_value(account.email)

    page.locator("#password").fill(account.password)
    page.locator("#login-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    expect(page.locator("#signed-in-as")).to_have_text(account.email)
    expect(page.locator("#ward")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#ward a.tile")).to_have_count(len(system.patient_uuids))
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    wait_for_new_vitals(page, system.patient_uuids[system.normal[0]])
    screenshot("signed-in")

    page.locator("#logout").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.request.get("/api/v1/auth/me").status == 401
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)


def test_a_session_ended_on_the_server_sends_the_dashboard_to_the_login_page(
    system, anonymous_page, signing_in, screenshot
):
    page = anonymous_page
    account = system.account(Role.CLINICIAN)
    signing_in(page, account)
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")

    engine = make_engine(system.database_url)
    try:
        with sessionmaker(engine).begin() as session:
            services.set_active(session, account.email, False)
    finally:
        engine.dispose()

    # The stream re-checks every 0.5 s here, and closes with "session ended".
    expect(page).to_have_url(LOGIN_URL, timeout=15_000)
    expect(page.locator("#login-form")).to_be_visible()
    screenshot()


class _PrizePage(BaseHTTPRequestHandler):
    """Another site's page: anything at all, served from another port of this host."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>You won a prize</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def foreign_site() -> Iterator[str]:
    """The URL of a page of another origin, yet the same site: 127.0.0.1 on another port
    (cookies do not tell ports apart, so the browser sends the dashboard's)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PrizePage)
    with serving(server, "foreign-site"):
        yield f"http://127.0.0.1:{server.server_address[1]}/"


def test_another_sites_page_cannot_open_the_stream_with_the_users_cookie(
    system, page, foreign_site
):
    """Cross-site WebSocket hijacking: the browser sends the dashboard's cookie with the
    handshake another page makes; the Origin it sets gives that page away."""
    stream = f"ws://127.0.0.1:{system.monitor_port}/api/v1/ws"
    open_ward(page)
    own = page.evaluate(OPEN_STREAM, stream)
    assert own["messages"] and '"hello"' in own["messages"][0], own

    page.goto(foreign_site)
    hijacked = page.evaluate(OPEN_STREAM, stream)

    assert hijacked["messages"] == [], hijacked
    # The handshake was refused: the socket never opened, so no close frame either.
    assert hijacked["code"] == 1006, hijacked


def test_a_limit_below_the_pulse_rings_until_a_clinician_acknowledges_it(
    system, anonymous_page, signing_in, screenshot
):
    clinician = system.account(Role.CLINICIAN)
    page = anonymous_page
    signing_in(page, clinician)
    open_ward(page)
    patient_uuid = system.patient_uuids[system.normal[0]]
    # A normal patient's pulse (60-100) is above a high limit of 50.
    low_limits = {"pulse": {"extreme_low": 20, "low": 30, "high": 50}, "reason": "test"}
    status, body = system.api(f"/patients/{patient_uuid}/alarm-limits", "PUT", low_limits)
    assert status == 200, body
    try:
        # After the condition delay (2 s here); it rings medium (yellow, flashing slowly).
        alarm = page.locator(f'#alarm-list .alarm[data-patient-uuid="{patient_uuid}"]')
        expect(alarm).to_have_attribute("data-priority", "medium", timeout=40_000)
        expect(alarm).to_have_attribute("data-state", "active")
        expect(alarm.locator(".alarm-condition")).to_have_text("Pulse high")
        expect(alarm).to_have_css("background-color", "rgb(253, 216, 53)")
        expect(alarm).to_have_css("animation-name", "alarm-flash")
        expect(tile(page, patient_uuid)).to_have_attribute("data-alarm", "medium")
        expect(tile(page, patient_uuid).locator(".tile-alarm")).to_have_text(
            re.compile("Pulse high")
        )

        sound = page.locator("#alarm-sound")
        sound.click()
        expect(sound).to_have_attribute("aria-pressed", "true")
        expect(sound).to_have_text("Sound on")
        screenshot("ringing")

        alarm.locator("button.acknowledge").click()
        expect(alarm).to_have_attribute("data-state", "acknowledged")
        expect(alarm.locator("button.acknowledge")).to_have_count(0)
        expect(alarm).to_have_css("animation-name", "none")
        status, alarms = system.api(f"/patients/{patient_uuid}/alarms")
        assert status == 200, alarms
        (acknowledged,) = [a for a in alarms if a["state"] == "acknowledged"]
        assert acknowledged["acknowledged_by"] == str(clinician.id)
    finally:
        defaults = {"pulse": {"extreme_low": 40, "low": 50, "high": 120}, "reason": "test done"}
        status, body = system.api(f"/patients/{patient_uuid}/alarm-limits", "PUT", defaults)
        assert status == 200, body
    # Back inside its limits for the delay, the acknowledged alarm ends and leaves the bar.
    expect(alarm).to_have_count(0, timeout=40_000)
    expect(tile(page, patient_uuid)).to_have_attribute("data-alarm", "none")


def test_a_viewer_sees_alarms_without_the_buttons_to_answer_them(
    system, anonymous_page, signing_in
):
    page = anonymous_page
    signing_in(page, system.account(Role.VIEWER))
    open_ward(page)
    expect(page.locator("#alarm-bar")).to_be_visible()
    expect(page.locator("#alarm-list button")).to_have_count(0)


def test_the_notifications_panel_pages_at_tablet_width(system, page):
    # Enough for a second page whatever ran before.
    for i in range(9):
        note = {"user_id": str(system.admin.id), "title": f"Page test {i}", "text": "Rounds."}
        status, body = system.api("/notifications", "POST", note)
        assert status == 201, body
    page.set_viewport_size({"width": 820, "height": 1180})
    open_ward(page)
    items = page.locator("#notification-list .notification")
    expect(items).to_have_count(8)
    expect(page.locator("#notifications-page")).to_have_text(re.compile(r"^1 / [2-9]\d*$"))
    expect(page.locator("#notifications-newer")).to_be_disabled()
    page.locator("#notifications-older").click()
    expect(page.locator("#notifications-page")).to_have_text(re.compile(r"^2 / \d+$"))
    expect(page.locator("#notifications-newer")).to_be_enabled()
    expect(page.locator("#notification-list .notification").first).not_to_have_text(
        re.compile("Page test 8")
    )


def test_a_clinician_changes_a_patients_limits_in_the_patient_view(
    system, anonymous_page, signing_in
):
    page = anonymous_page
    signing_in(page, system.account(Role.CLINICIAN))
    patient_uuid = system.patient_uuids[system.normal[1]]
    page.goto(f"/#/patient/{patient_uuid}")
    high = page.locator('#limits-form input[name="pulse.high"]')
    expect(high).to_have_value("120")
    expect(page.locator('#limits-form input[name="spo2.high"]')).to_have_attribute(
        "placeholder", "off"
    )
    try:
        # Refused: a low above the high; the page says why and nothing changes.
        page.locator('#limits-form input[name="pulse.low"]').fill("125")
        page.locator('#limits-form input[name="reason"]').fill("post-op tachycardia")
        page.locator("#limits-form button[type=submit]").click()
        expect(page.locator("#limits-status")).to_have_attribute("data-outcome", "refused")
        expect(page.locator("#limits-status")).to_contain_text("pulse low")
        assert system.api(f"/patients/{patient_uuid}/alarm-limits")[1]["pulse"]["low"] == 50

        page.locator('#limits-form input[name="pulse.low"]').fill("50")
        high.fill("135")
        page.locator("#limits-form button[type=submit]").click()
        expect(page.locator("#limits-status")).to_have_text("Saved.")
        limits = system.api(f"/patients/{patient_uuid}/alarm-limits")[1]
        assert (limits["pulse"]["high"], limits["reason"]) == (135, "post-op tachycardia")
    finally:
        body = {"pulse": {"low": 50, "high": 120}, "reason": "test done"}
        assert system.api(f"/patients/{patient_uuid}/alarm-limits", "PUT", body)[0] == 200


def test_a_viewer_reads_the_limits_but_cannot_change_them(system, anonymous_page, signing_in):
    page = anonymous_page
    signing_in(page, system.account(Role.VIEWER))
    page.goto(f"/#/patient/{system.patient_uuids[system.normal[1]]}")
    high = page.locator('#limits-form input[name="pulse.high"]')
    expect(high).to_have_value("120")
    expect(high).to_be_disabled()
    expect(page.locator("#limits-form button")).to_have_count(0)


def test_the_patient_view_downloads_the_window_on_screen_as_csv(system, page):
    patient_uuid = system.patient_uuids[system.normal[0]]
    histories: list[Response] = []

    def record(response: Response) -> None:
        if f"/patient/{patient_uuid}/history" in response.url:
            histories.append(response)

    page.on("response", record)
    page.goto(f"/#/patient/{patient_uuid}")
    link = page.locator("#samples-csv")
    expect(link).to_be_visible()
    page.locator('button.window[data-window="15m"]').click()
    page.wait_for_function(LINK_SPANS_MS, arg=15 * 60 * 1000)

    with page.expect_download() as started:
        link.click()
    download = started.value

    url = urlsplit(download.url)
    assert url.path == f"/api/v1/patient/{patient_uuid}/metrics.csv"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    # Exactly a window the page was given to chart (it re-reads the history as samples come).
    charted = {(r.json()["from"], r.json()["to"]) for r in histories if r.ok}
    assert (query["from"], query["to"]) in charted
    since, until = datetime.fromisoformat(query["from"]), datetime.fromisoformat(query["to"])
    assert re.fullmatch(
        rf"vigil-samples-{patient_uuid}-\d{{8}}T\d{{6}}Z-\d{{8}}T\d{{6}}Z\.csv",
        download.suggested_filename,
    )
    # Downloaded with the page's session cookie: the CSV, oldest first, inside the window.
    header, *samples = csv.reader(io.StringIO(Path(download.path()).read_text()))
    assert header[0] == "timestamp" and header[-1] == "news2_band"
    times = [datetime.fromisoformat(sample[0]) for sample in samples]
    assert times and times == sorted(times)
    assert since <= times[0] and times[-1] < until
