"""Training from the sidebar in a real browser: ``streamlit run app.py`` driven by Playwright with Debian's
Chromium. Opens the "Train" panel, starts a short cnn1d training of one head on the 200-record synthetic
set and watches its progress until it finishes, without ever reloading the page. The finished run is
listed but changes nobody's choice: this session stays on the run it had until "Review with this run" is
clicked (then the selector and the URL hold the new run), and a new session still opens on the old run. Screenshots go to ``tests/_artifacts/train_*.png``, the progress texts seen to
``tests/_artifacts/browser_train.json``.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from test_browser import (
    ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, app_env, home_with_tiny_run, require_browser, start_streamlit, stop,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EPOCHS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory, synth_dir):
    require_browser()
    home = home_with_tiny_run(tmp_path_factory, synth_dir, "xand_train_browser_home")  # tiny: the run in use
    log = tmp_path_factory.mktemp("browser_train_log") / "streamlit.log"
    proc, url = start_streamlit(app_env(home, XAND_RUNS_DIR=str(home / "runs")), log)
    yield {"url": url, "home": home, "log": log}
    from xand.jobs import JobManager

    mgr = JobManager(home / "runs")
    for job in mgr.jobs():
        if job.active:
            mgr.cancel(job.id, grace=2)
    stop(proc)


def _wait_idle(page, timeout: float = 30.0) -> None:
    """Wait until Streamlit's status widget ("Running...") is gone: no rerun in flight."""
    deadline = time.time() + timeout
    while time.time() < deadline and page.locator("[data-testid='stStatusWidget']").count():
        time.sleep(0.2)


def test_train_from_sidebar_until_finished(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(server["url"])
        sidebar = page.locator("[data-testid='stSidebar']")
        runs_box = sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Trained run")
        runs_box.wait_for(timeout=120_000)  # demo set ready, the run in use selected
        page.wait_for_function("() => location.search.includes('run=tiny')", timeout=30_000)
        sidebar.locator("[data-testid='stExpander'] summary").filter(has_text="Train").click()
        option = page.locator("[role='listbox'] [role='option']").filter(has_text="cnn1d").first
        arch = sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Architecture")
        # A rerun landing while the dropdown is open closes it again or lays the page out anew under the
        # pointer (the click is then intercepted): wait for the app to be idle, retry in short attempts,
        # and check the choice really took.
        for _ in range(8):
            _wait_idle(page)
            try:
                if not option.is_visible():
                    arch.click(timeout=5_000)
                    option.wait_for(timeout=5_000)
                option.click(timeout=5_000)
            except Exception:  # noqa: BLE001 - playwright's TimeoutError
                page.keyboard.press("Escape")
                continue
            if "cnn1d" in arch.inner_html():
                break
        else:
            raise AssertionError(f"could not choose cnn1d; the selector holds {arch.inner_html()[-600:]!r}")
        sidebar.get_by_role("spinbutton", name="Epochs").fill(str(EPOCHS))
        sidebar.get_by_role("spinbutton", name="Patience").fill("0")
        page.screenshot(path=str(ARTIFACTS / "train_form.png"))
        t0 = time.perf_counter()
        sidebar.get_by_role("button", name="Start training").click()

        sidebar.get_by_text("Training cnn1d").wait_for(timeout=60_000)
        from playwright.sync_api import expect

        # the form's button is redrawn by the full rerun that follows the start, not by the fragment
        expect(sidebar.get_by_role("button", name="Start training")).to_be_disabled(timeout=30_000)
        seen, shot = [], False
        deadline = time.time() + 180
        while time.time() < deadline:  # the page is never reloaded: the fragment brings every update
            text = sidebar.inner_text()
            for line in text.splitlines():
                if ("epoch" in line or "Preparing" in line or "ECG/s" in line) and line not in seen:
                    seen.append(line)
            if not shot and "ECG/s" in text:
                page.screenshot(path=str(ARTIFACTS / "train_running.png"))
                shot = True
            if "Finished in" in text:
                break
            time.sleep(0.25)
        else:
            raise AssertionError(f"training did not finish; panel shows:\n{sidebar.inner_text()}")
        seconds = time.perf_counter() - t0

        from xand.jobs import JobManager

        job = JobManager(server["home"] / "runs").latest()
        assert job.status == "finished" and job.run_dir is not None
        new = job.run_dir.name
        # listed (the app reran when the job ended), but this session still reviews with its own run
        review_btn = sidebar.get_by_role("button", name="Review with this run")
        review_btn.wait_for(timeout=30_000)
        assert "run=tiny" in page.url and new not in runs_box.inner_html()
        _wait_idle(page)
        review_btn.click()
        page.wait_for_function("name => location.search.includes('run=' + name)", arg=new, timeout=30_000)
        deadline = time.time() + 30
        while new not in runs_box.inner_html() and time.time() < deadline:
            time.sleep(0.2)
        assert new in runs_box.inner_html()
        review_btn.wait_for(state="detached", timeout=30_000)  # shown only while another run is selected
        assert "val AUC" in sidebar.inner_text()
        # the app's rerun after the end replaced the live view: no Cancel button left, Start enabled again
        sidebar.get_by_role("button", name="Cancel training").wait_for(state="detached", timeout=60_000)
        assert sidebar.get_by_role("button", name="Start training").is_enabled()
        page.screenshot(path=str(ARTIFACTS / "train_finished.png"))
        # another reviewer's new session: opens on the run it opened on before the job, not the newest
        other = browser.new_page(viewport={"width": 1400, "height": 1000})
        other.goto(server["url"])
        other.wait_for_function("() => location.search.includes('run=')", timeout=120_000)
        assert "run=tiny" in other.url and f"run={new}" not in other.url
        browser.close()
    (ARTIFACTS / "browser_train.json").write_text(json.dumps(
        {"seconds_start_to_finished": seconds, "epochs": EPOCHS, "progress_seen": seen,
         "run": job.run_dir.name, "load_average_1min": os.getloadavg()[0]}, indent=2))
    assert any("Training" in s or "epoch" in s or "Preparing" in s for s in seen) or shot
