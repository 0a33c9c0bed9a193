"""The dashboard in a real browser: a whole Vigil started as processes, and Debian's chromium.

One system serves every test of a module. Its processes log to a temporary folder whose path
every readiness failure names; screenshots go to var/screenshots/, named after the test.
`page` is signed in through the login form as the system's admin; `anonymous_page` is not.
"""

from __future__ import annotations

import re
import secrets
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from devserver.ports import free_port
from devserver.processes import ROOT, Processes, get_json, wait_until
from devserver.redis_credentials import RedisAccess
from shared.auth.roles import Role
from shared.db import make_engine, migrate
from tests.auth import Account, account_in, get_json_as_admin, write_worker_token

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers lack the namespaces), and none of the calls home a fresh profile makes.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
# The dashboard's own URL, where a sign-in without `next` leads.
DASHBOARD_URL = re.compile(r"^http://[^/]+/(#.*)?$")

# The dashboard marks a tile stale after three intervals without a sample.
METRICS_INTERVAL = "0.5"
ALARM_DELAY_SECONDS = "2"
# Long enough to see on the ward, short enough that a test waits seconds, not minutes.
DETERIORATION_SECONDS = "20"
# How often a live stream re-checks its session: a test waits for it, so not the 5 s default.
WS_SESSION_CHECK_SECONDS = "0.5"

NORMAL_PATIENTS = ("Ivan Petrov", "Anna Ivanova")
DETERIORATING_PATIENT = "Maria Sokolova"
PATIENTS = (*NORMAL_PATIENTS, DETERIORATING_PATIENT)

# How long a page may take to show what the system already did; slower waits say so.
expect.set_options(timeout=10_000)


@dataclass
class System:
    """A running Vigil: the URL the dashboard is served at, and the processes behind it."""

    processes: Processes
    monitor_port: int
    patient_ports: dict[str, int]
    monitor_env: dict[str, str]
    database_url: str
    admin: Account
    patient_uuids: dict[str, str] = field(default_factory=dict)
    normal: tuple[str, ...] = NORMAL_PATIENTS
    deteriorating: str = DETERIORATING_PATIENT
    deterioration_started: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def api(self, path: str, method: str = "GET", body: object = None):
        """(status, JSON body) of a monitor_app API call, as the system's admin."""
        return get_json(f"{self.url}/api/v1{path}", method, body, token=self.admin.token)

    def account(self, role: Role = Role.CLINICIAN) -> Account:
        """A new account in the system's database."""
        return account_in(self.database_url, role)

    def patient_process(self, name: str) -> str:
        return f"patient-{PATIENTS.index(name) + 1}"

    def set_scenario(self, name: str, scenario: str) -> None:
        """Switch a simulated patient's scenario (the same one again changes nothing)."""
        patient_uuid = self.patient_uuids[name]
        status, body = get_json(
            f"http://127.0.0.1:{self.patient_ports[name]}/api/v1/patients/{patient_uuid}/scenario",
            "PUT",
            {"scenario": scenario},
            token=self.admin.token,
        )
        assert status == 200, body

    def start_deterioration(self) -> None:
        """Set the deteriorating patient on their course; again, it just goes on."""
        self.set_scenario(self.deteriorating, "deteriorating")
        self.deterioration_started = True

    def stop_patient(self, name: str) -> None:
        assert self.processes.stop(self.patient_process(name)) == 0, self.processes.log(
            self.patient_process(name)
        )[-3000:]

    def start_patient(self, name: str, **env: str) -> None:
        """(Re)start a simulated patient; the same name is the same patient."""
        process = self.patient_process(name)
        self.processes.start_patient(
            process, self.patient_ports[name], name, METRICS_INTERVAL=METRICS_INTERVAL, **env
        )
        self.wait_for_health(f"http://127.0.0.1:{self.patient_ports[name]}", process)

    def stop_monitor(self) -> None:
        # SIGINT is gunicorn's quick shutdown: open WebSockets are cut, not drained for 15 s.
        self.processes.stop("monitor", signal.SIGINT)

    def start_monitor(self) -> None:
        self.processes.start_monitor("monitor", self.monitor_port, **self.monitor_env)
        self.wait_for_health(self.url, "monitor")

    def wait_for_health(self, url: str, name: str, timeout: float = 60) -> None:
        """Wait for the process `name` to answer 200 on `url`/health; fail if it exits."""

        def healthy() -> bool:
            self.processes.check_running(name)
            return get_json(f"{url}/health")[0] == 200

        wait_until(
            healthy,
            timeout=timeout,
            interval=0.1,
            message=f"{name} to be healthy (logs in {self.processes.log_dir})",
        )


@pytest.fixture(scope="module")
def system(
    tansu_bootstrap: str, redis_users: RedisAccess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """Broker, Redis, analyser, worker, data_app, monitor_app and three simulated patients."""
    log_dir = tmp_path_factory.mktemp("system")
    suffix = uuid.uuid4().hex[:10]
    database_url = f"sqlite:///{log_dir / 'vigil.db'}"
    analyser_port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": tansu_bootstrap,
        "KAFKA_TOPIC": f"vitals-{suffix}",
        "KAFKA_DLQ_TOPIC": f"vitals-{suffix}.dlq",
        **redis_users.settings(),
        "REDIS_NAMESPACE": f"test-{suffix}",
        "DATABASE_URL": database_url,
        "AI_API_URL": f"http://127.0.0.1:{analyser_port}/api/v1/analyse",
        "AI_API_TOKEN_FILE": str(log_dir / "ai-api-token"),
        # A restarted simulator keeps its patient, as under make run.
        "PATIENT_ID_SECRET": secrets.token_hex(32),
    }
    write_worker_token(log_dir / "ai-api-token")
    processes = Processes(log_dir, env)
    # Created up front, so the apps do not race each other to migrate a fresh file.
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    system = System(
        processes,
        free_port(),
        {name: free_port() for name in PATIENTS},
        {
            "METRICS_INTERVAL": METRICS_INTERVAL,
            "WS_SESSION_CHECK_SECONDS": WS_SESSION_CHECK_SECONDS,
        },
        database_url,
        account_in(database_url, Role.ADMIN),
    )
    try:
        processes.start_analyser(
            analyser_port, ANALYSER_MIN_LATENCY="0.05", ANALYSER_MAX_LATENCY="0.1"
        )
        processes.start_worker(METRICS_PORT="0")
        data_port = free_port()
        processes.start_gunicorn(
            "data",
            "data_app",
            data_port,
            KAFKA_GROUP_ID=f"data-{suffix}",
            KAFKA_SESSION_TIMEOUT_MS="2000",
            # A short alarm condition delay: the alarm tests wait for it twice.
            ALARM_DELAY_SECONDS=ALARM_DELAY_SECONDS,
        )
        # Every patient starts well: a test sets one deteriorating with the ward in view, so
        # the page is seen to follow the change rather than load its result.
        for name in PATIENTS:
            course = (
                {"PATIENT_DETERIORATION_SECONDS": DETERIORATION_SECONDS}
                if name == system.deteriorating
                else {}
            )
            system.start_patient(name, **course)
        system.start_monitor()
        _wait_until_ready(system, analyser_port, data_port)
        yield system
    finally:
        processes.stop_all()


def _wait_until_ready(system: System, analyser_port: int, data_port: int) -> None:
    processes, logs = system.processes, system.processes.log_dir
    system.wait_for_health(f"http://127.0.0.1:{analyser_port}", "analyser")

    def worker_ready() -> bool:
        processes.check_running("worker")
        return "ready." in processes.log("worker")

    wait_until(worker_ready, timeout=60, interval=0.1, message=f"the worker (logs in {logs})")

    def consuming() -> object:
        processes.check_running("data")
        body = get_json_as_admin(f"http://127.0.0.1:{data_port}/health")[1] or {}
        return body.get("consumer", {}).get("assigned_partitions")

    wait_until(
        consuming,
        timeout=60,
        interval=0.1,
        message=f"data_app's consumer to be assigned (logs in {logs})",
    )

    def every_patient_listed() -> dict[str, str] | None:
        for name in PATIENTS:
            processes.check_running(system.patient_process(name))
        status, body = system.api("/patients")
        seen = {p["name"]: p["uuid"] for p in body or [] if p["latest"]} if status == 200 else {}
        return seen if set(seen) == set(PATIENTS) else None

    system.patient_uuids = wait_until(
        every_patient_listed,
        timeout=60,
        interval=0.2,
        message=f"every patient in monitor_app (logs in {logs})",
    )


@pytest.fixture(scope="module")
def critical_alert(system: System) -> str:
    """The id of an analysed critical notification about the deteriorating patient."""
    system.start_deterioration()
    query = (
        f"/notifications?patient_uuid={system.patient_uuids[system.deteriorating]}"
        "&category=critical&page_size=200"
    )

    def analysed() -> str | None:
        status, body = system.api(query)
        return body[-1]["id"] if status == 200 and body else None

    return wait_until(
        analysed,
        timeout=60,
        interval=0.2,
        message="a critical alert about the deteriorating patient, analysed",
    )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless; the tests fail (not skip) without it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests need Debian's chromium "
            "(apt-get install chromium)",
            pytrace=False,
        )
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def sign_in(page: Page, account: Account) -> None:
    """Sign in through the login form, as a person would, and wait for the dashboard."""
    response = page.goto("/login")
    assert response is not None and response.ok, "the login page did not load"
    page.locator("#email").fill(account.email)
    page.locator("#password").fill(account.password)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(DASHBOARD_URL)
    expect(page.locator("#signed-in-as")).to_have_text(account.email)


@pytest.fixture
def anonymous_page(
    browser: Browser, system: System, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser profile on the system's monitor_app, not signed in.

    A failing test gets a screenshot of the page as it was and the page's errors in its report.
    """
    context = browser.new_context(base_url=system.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = request.node.stash[_PAGE_ERRORS] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    yield page
    if request.node.stash.get(_FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{request.node.name}-failed.png", full_page=True)
    context.close()


@pytest.fixture
def signing_in() -> Callable[[Page, Account], None]:
    """`sign_in`, for the tests (a conftest is not imported from)."""
    return sign_in


@pytest.fixture
def page(anonymous_page: Page, system: System) -> Page:
    """A fresh browser profile signed in through the login form as the system's admin."""
    sign_in(anonymous_page, system.admin)
    return anonymous_page


@pytest.fixture
def screenshot(anonymous_page: Page, request: pytest.FixtureRequest) -> Callable[..., Path]:
    """Save the whole page as var/screenshots/<test name>[-<suffix>].png."""

    def take(suffix: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}{'-' + suffix if suffix else ''}.png"
        anonymous_page.screenshot(path=path, full_page=True)
        return path

    return take


_FAILED = pytest.StashKey[bool]()
_PAGE_ERRORS = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
        if errors := item.stash.get(_PAGE_ERRORS, None):
            report.sections.append(("page errors", "\n".join(errors)))
    return report
