"""The viewer in a real browser: ``streamlit run app.py`` on 127.0.0.1 driven by Playwright with Debian's
Chromium (Playwright's own browser download cannot work here). Opens a deep link, switches the head,
checks that the scores change to what ``xand`` computes, saves screenshots to ``tests/_artifacts/`` and
records the timings (opening a record, switching head) in ``tests/_artifacts/browser_timings.json``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_app import ROOT, expected_view, heads_of, make_app_home

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "_artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(env: dict, log_path: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free local port with ``env``; returns the process and its URL."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")


def require_browser() -> None:
    """Skip cleanly where no Chromium or no Playwright is installed."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (CI installs Debian's chromium package)")
    pytest.importorskip("playwright.sync_api")


def app_env(home: Path, **extra: str) -> dict:
    """The environment of a test server on ``home``: no demo weights, no background work unless asked,
    none of the developer's own ``XAND_*`` settings."""
    env = {**os.environ, "XAND_HOME": str(home), "XAND_DEMO_WEIGHTS": str(home / "no_demo_weights"),
           "XAND_BACKGROUND": "0", "PYTHONUNBUFFERED": "1", **extra}
    for k in ("XAND_DATA_DIR", "XAND_RUNS_DIR", "XAND_CACHE", "XAND_PTBXL_PLUS", "XAND_RUN", "XAND_TRAIN_LOCK"):
        if k not in extra:
            env.pop(k, None)
    return env


def home_with_tiny_run(tmp_path_factory, synth_dir, name: str) -> Path:
    """A fresh app home whose demo set is ``synth_dir`` and whose one run is the shared ``tiny`` run."""
    shared = make_app_home(tmp_path_factory.getbasetemp() / "xand_app_home", synth_dir)
    home = tmp_path_factory.mktemp(name)
    (home / "demo").symlink_to(synth_dir, target_is_directory=True)
    (home / "runs").mkdir()
    (home / "runs" / "tiny").symlink_to(shared / "runs" / "tiny", target_is_directory=True)
    return home


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, synth_dir):
    require_browser()
    home = make_app_home(tmp_path_factory.getbasetemp() / "xand_app_home", synth_dir)  # shared with test_app
    # background work off: the timings measure explanations computed on demand (XAND_TEST_BACKGROUND=1
    # measures the app as users get it, with the other heads and the next record explained ahead)
    background = os.environ.get("XAND_TEST_BACKGROUND", "0")
    log = tmp_path_factory.mktemp("browser_log") / "streamlit.log"
    try:
        proc, url = start_streamlit(app_env(home, XAND_BACKGROUND=background), log)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield {"url": url, "home": home, "log": log, "background": background == "1"}
    stop(proc)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _figure_ready(page, head: str, timeout_ms: int = 90_000) -> None:
    """The printout is drawn for ``head``: its title names the head and the lead traces are in the SVG."""
    page.wait_for_selector(f"text.gtitle:has-text('head {head}')", timeout=timeout_ms)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot')).some("
        "el => el.data && el.data.filter(t => (t.name || '').startsWith('lead:')).length === 12)",
        timeout=timeout_ms)


def _metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()


def _server_seconds(page) -> float | None:
    """The Review page's own report of its server time ("Page computed in X s on the server")."""
    import re

    page.wait_for_timeout(600)  # after the clock stopped: let the run finish writing its last elements
    m = re.search(r"Page computed in ([0-9.]+) s on the server", page.inner_text("body"))
    return float(m.group(1)) if m else None


def _choose(page, label: str, option: str) -> float:
    """Pick ``option`` in the sidebar selectbox ``label``; returns the clock at the option's click (the
    dropdown's opening animation is not part of the app's response time)."""
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(has_text=label).first
    box.click()
    item = page.locator("[role='listbox'] [role='option']").filter(has_text=option).first
    item.wait_for()
    t0 = time.perf_counter()
    item.click()
    return t0


def test_deep_link_switch_head_and_timings(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = server["home"]
    run_dir = home / "runs" / "tiny"
    h1, h2 = heads_of(home)[:2]
    ecg_id = 7
    link = f"{server['url']}/review?record={ecg_id}&head={h1}&method=ig"
    page = browser.new_page(viewport={"width": 1600, "height": 1150})
    # warm the server's caches for this record (model, table, first head's explanation)
    page.goto(link)
    _figure_ready(page, h1)

    timings = {}
    t0 = time.perf_counter()
    page.goto(link)  # a full page load: the browser fetches and starts the app's frontend again
    _figure_ready(page, h1)
    timings["open_record_deep_link_s"] = time.perf_counter() - t0
    timings["open_record_deep_link_server_s"] = _server_seconds(page)
    want1 = expected_view(home, run_dir, ecg_id, h1)
    assert _metric(page, f"Probability {h1}") == f"{want1.probability:.3f}"
    assert f"Record {ecg_id}" in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / f"review_{h1}.png"), full_page=True)

    t0 = _choose(page, "Head", h2)  # IG for this head on this record was never computed: not cached
    _figure_ready(page, h2)
    page.wait_for_selector(f"[data-testid='stMetric']:has-text('Probability {h2}')")
    timings["switch_head_uncached_s"] = time.perf_counter() - t0
    timings["switch_head_uncached_server_s"] = _server_seconds(page)
    want2 = expected_view(home, run_dir, ecg_id, h2)
    assert _metric(page, f"Probability {h2}") == f"{want2.probability:.3f}"
    cas = want2.scores["cas"]["value"]
    assert _metric(page, "CAS") == ("undefined" if cas is None else f"{cas:.3f}")
    assert f"head={h2}" in page.url and f"record={ecg_id}" in page.url
    page.screenshot(path=str(ARTIFACTS / f"review_{h2}.png"), full_page=True)

    t0 = _choose(page, "Head", h1)  # back to a cached head
    _figure_ready(page, h1)
    page.wait_for_selector(f"[data-testid='stMetric']:has-text('Probability {h1}')")
    timings["switch_head_cached_s"] = time.perf_counter() - t0
    timings["switch_head_cached_server_s"] = _server_seconds(page)
    assert _metric(page, f"Probability {h1}") == f"{want1.probability:.3f}"

    # next record in the cohort: a new ECG, explanation not cached
    t0 = time.perf_counter()
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_function(
        "(id) => Array.from(document.querySelectorAll('text.gtitle')).some(t => t.textContent.startsWith("
        "'ecg_id ' + id + ' '))", arg=str(ecg_id + 1), timeout=90_000)
    _figure_ready(page, h1)
    timings["next_record_uncached_s"] = time.perf_counter() - t0
    timings["next_record_uncached_server_s"] = _server_seconds(page)
    assert f"record={ecg_id + 1}" in page.url

    page.goto(f"{server['url']}/compare?record={ecg_id}")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot')).some("
        "el => el.data && el.data.filter(t => (t.name || '').startsWith('lead:')).length === 12)",
        timeout=120_000)
    page.wait_for_function(  # one readable printout per head, each on ECG paper with its lead traces
        "n => Array.from(document.querySelectorAll('.js-plotly-plot')).filter("
        "el => el.data && el.data.filter(t => (t.name || '').startsWith('lead:')).length === 12).length >= n",
        arg=min(len(heads_of(home)), 4), timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # Browse: clicking a row opens that record in Review (explanation not cached)
    page.goto(server["url"])  # Browse is the default page, at the root
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "browse.png"), full_page=True)
    box = grid.bounding_box()
    row = 4  # the 5th record of the table: ecg_id 5
    t0 = time.perf_counter()
    page.mouse.click(box["x"] + 16, box["y"] + 35 * (row + 1) + 17)  # the row's selection cell
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('text.gtitle')).some(t => t.textContent.startsWith("
        "'ecg_id 5 '))", timeout=90_000)
    _figure_ready(page, h1)
    timings["open_from_browse_uncached_s"] = time.perf_counter() - t0
    timings["open_from_browse_uncached_server_s"] = _server_seconds(page)
    assert "record=5" in page.url

    timings["background"] = server["background"]
    timings["load_average_1min"] = os.getloadavg()[0]
    timings["cpu_count"] = os.cpu_count()
    name = "browser_timings_background.json" if server["background"] else "browser_timings.json"
    (ARTIFACTS / name).write_text(json.dumps(timings, indent=2))
    print("browser timings:", json.dumps(timings))
    page.close()


@pytest.mark.skipif(not os.environ.get("XAND_BROWSER_REPEATS"),
                    reason="timing run: set XAND_BROWSER_REPEATS=N to measure each action N times")
def test_repeated_timings(server, browser):
    """Medians over N repetitions (``tests/_artifacts/browser_timings_repeated*.json``): opening the next
    record (a new ECG, explanation computed on demand), a fresh deep link (full page load), switching to
    a head not computed yet for this ECG, and back to one that is."""
    import statistics

    n = int(os.environ["XAND_BROWSER_REPEATS"])
    home = server["home"]
    heads = heads_of(home)
    page = browser.new_page(viewport={"width": 1600, "height": 1150})
    start = 100
    page.goto(f"{server['url']}/review?record={start}&head={heads[0]}&method=ig")
    _figure_ready(page, heads[0])
    samples: dict[str, list[float]] = {k: [] for k in ("next_record", "deep_link", "switch_head_uncached",
                                                       "switch_head_cached")}
    ecg_id = start
    for _ in range(n):
        t0 = time.perf_counter()
        page.get_by_role("button", name="Next ▶").click()
        ecg_id += 1
        page.wait_for_function(
            "(id) => Array.from(document.querySelectorAll('text.gtitle')).some(t => t.textContent.startsWith("
            "'ecg_id ' + id + ' '))", arg=str(ecg_id), timeout=90_000)
        _figure_ready(page, heads[0])
        samples["next_record"].append(time.perf_counter() - t0)
        for h in [*heads[1:], heads[0]]:  # every other head once (not computed yet), then back
            t0 = _choose(page, "Head", h)
            _figure_ready(page, h)
            page.wait_for_selector(f"[data-testid='stMetric']:has-text('Probability {h}')")
            key = "switch_head_cached" if h == heads[0] else "switch_head_uncached"
            samples[key].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        page.goto(f"{server['url']}/review?record={ecg_id}&head={heads[0]}&method=ig")
        _figure_ready(page, heads[0])
        samples["deep_link"].append(time.perf_counter() - t0)
    out = {k: {"median_s": statistics.median(v), "max_s": max(v), "n": len(v)} for k, v in samples.items()}
    out["background"] = server["background"]
    out["load_average_1min"] = os.getloadavg()[0]
    out["cpu_count"] = os.cpu_count()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "browser_timings_repeated" + ("_background" if server["background"] else "") + ".json"
    (ARTIFACTS / name).write_text(json.dumps(out, indent=2))
    print("repeated browser timings:", json.dumps(out))
    assert all(len(v) >= n for v in samples.values())
    page.close()


def test_first_load_shows_only_the_apps_menu(server, browser):
    """From the first byte on, the sidebar never lists the ``pages/`` folder's file names (Streamlit's
    legacy page list flashed lower-case names for ~1.5 s before the menu), the menu holds the app's page
    titles, and the toolbar has no "Deploy" button."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script("""
        window.__navSeen = [];
        new MutationObserver(() => {
            for (const el of document.querySelectorAll("[data-testid='stSidebarNav']")) {
                const t = el.innerText.trim();
                if (t && !window.__navSeen.includes(t)) window.__navSeen.push(t);
            }
        }).observe(document, {childList: true, subtree: true, characterData: true});
    """)
    page.goto(server["url"])
    menu = page.locator("[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']")
    menu.first.wait_for(timeout=120_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__navSeen") == []
    assert [t.strip().split("\n")[-1] for t in menu.all_inner_texts()] == ["Browse", "Review", "Compare heads", "Evaluate",
                                                           "Reviews", "Upload ECG"]
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.close()
