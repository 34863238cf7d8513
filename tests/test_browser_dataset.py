"""The review loop never shows (or files a verdict against) an ECG of another dataset: in a real browser,
with a PTB-XL-layout folder chosen in the sidebar beside the synthetic demo set, every way of opening a
record from Browse must open *that folder's* record, keep the sidebar's choices, and file the verdict
under that folder. Both sets number their records 1..N, so a record id alone cannot tell them apart; the
patient id can (the two sets are generated with different seeds).

Regression test of the review-session issue's first bug: "Open in Review" and a click on a table row
opened the demo record with the same id (``data=demo`` in the URL, the sidebar back on the demo set).
Also: a run that appears later (a finished training job) does not change the run a new session opens.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from test_app import heads_of
from test_browser import (  # noqa: F401 - browser is a fixture
    ARTIFACTS, _figure_ready, app_env, browser, home_with_tiny_run, require_browser, start_streamlit, stop,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N_OTHER = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory, synth_dir):
    require_browser()
    from xand.data.synth import SynthConfig, synthesize

    home = home_with_tiny_run(tmp_path_factory, synth_dir, "xand_dataset_home")
    other = tmp_path_factory.mktemp("other_ptbxl") / "ptbxl_other"
    synthesize(other, SynthConfig(n_records=N_OTHER, seed=5), progress=False)
    log = tmp_path_factory.mktemp("browser_dataset_log") / "streamlit.log"
    proc, url = start_streamlit(app_env(home), log)
    yield {"url": url, "home": home, "other": other, "demo": synth_dir, "heads": heads_of(home)}
    stop(proc)


def _patients(folder: Path) -> dict[int, int]:
    db = pd.read_csv(folder / "ptbxl_database.csv")
    return dict(zip(db["ecg_id"].astype(int), db["patient_id"].astype(int)))


def _choose(page, label: str, option: str) -> None:
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(has_text=label).first
    box.click()
    page.locator("[role='listbox'] [role='option']").filter(has_text=option).first.click()


def _shown_record(page) -> tuple[int, int, int]:
    """(ecg_id, patient_id, cohort size) as the Review page shows them."""
    page.wait_for_function("() => /Record \\d+ · patient \\d+/.test(document.body.innerText)", timeout=90_000)
    body = page.inner_text("body")
    ecg, patient = map(int, re.search(r"Record (\d+) · patient (\d+)", body).groups())
    size = int(re.search(r"\d+ of (\d+) in", body).group(1))
    return ecg, patient, size


def _assert_on_other(page, server, ecg_id: int, head: str) -> None:
    _figure_ready(page, head)
    shown, patient, size = _shown_record(page)
    assert shown == ecg_id
    want_other, want_demo = _patients(server["other"])[ecg_id], _patients(server["demo"])[ecg_id]
    assert want_other != want_demo  # the check below can tell the datasets apart
    assert patient == want_other, f"record {ecg_id} shown from the demo set (patient {patient})"
    assert size == N_OTHER
    assert "data=demo" not in page.url and f"record={ecg_id}" in page.url and f"head={head}" in page.url
    radio = page.locator("[data-testid='stSidebar'] [role='radiogroup'] input[type='radio']:checked")
    assert radio.count() == 1
    checked = page.locator("[data-testid='stSidebar'] [role='radiogroup'] label").filter(
        has=page.locator("input:checked")).inner_text()
    assert "PTB-XL folder" in checked


def test_browse_opens_the_chosen_datasets_record_and_files_the_verdict_there(server, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    head = server["heads"][-1]  # not the default head: the head must survive the page switch too
    page = browser.new_page(viewport={"width": 1600, "height": 1150})
    page.goto(server["url"])
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("PTB-XL folder").first.wait_for(timeout=120_000)
    sidebar.get_by_text("PTB-XL folder").first.click()
    box = sidebar.get_by_role("textbox", name="PTB-XL folder")
    box.fill(str(server["other"]))
    box.press("Enter")
    page.get_by_text(f"of {N_OTHER} records").first.wait_for(timeout=90_000)
    _choose(page, "Head", head)
    page.wait_for_function("h => location.search.includes('head=' + h)", arg=head, timeout=30_000)
    page.get_by_text(f"of {N_OTHER} records").first.wait_for(timeout=90_000)

    # 1. "Open in Review" with the record picker's first record
    page.get_by_role("button", name="Open in Review").click()
    page.wait_for_url(re.compile(r".*/review\?.*"), timeout=60_000)
    _assert_on_other(page, server, 1, head)
    page.screenshot(path=str(ARTIFACTS / "dataset_open_in_review.png"), full_page=True)

    # 2. back to Browse by the menu, then a click on the 3rd row of the table (ecg_id 3)
    page.locator("[data-testid='stSidebar'] [data-testid='stPageLink-NavLink']").filter(has_text="Browse").first.click()
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=60_000)
    page.get_by_text(f"of {N_OTHER} records").first.wait_for(timeout=90_000)
    page.wait_for_timeout(500)
    bb = grid.bounding_box()
    page.mouse.click(bb["x"] + 16, bb["y"] + 35 * 3 + 17)  # row 3's selection cell (header is row 0)
    page.wait_for_url(re.compile(r".*record=3.*"), timeout=60_000)
    _assert_on_other(page, server, 3, head)

    # 3. "Next" walks that dataset, not the demo set
    page.get_by_role("button", name="Next ▶").click()
    page.wait_for_url(re.compile(r".*record=4.*"), timeout=60_000)
    page.wait_for_function("() => /Record 4 · patient/.test(document.body.innerText)", timeout=90_000)
    _assert_on_other(page, server, 4, head)

    # 4. a verdict saved here is filed under the folder's dataset name, on that record
    page.get_by_role("textbox", name="Reviewer").fill("Dr Test")
    page.get_by_role("textbox", name="Reviewer").press("Enter")
    form = page.locator("[data-testid='stMainBlockContainer'] [data-testid='stForm']")
    form.wait_for(timeout=60_000)
    form.get_by_text("Agree", exact=True).click()
    form.get_by_text("Partly", exact=True).click()
    form.get_by_role("button", name="Save verdict").click()
    page.get_by_text("Saved version 1").wait_for(timeout=30_000)
    from xand.reviews.store import ReviewStore, default_url

    store = ReviewStore(default_url(server["home"]))
    v = store.current(server["other"].name, 4, head, "Dr Test")
    assert v is not None and v.prediction == "agree" and v.plausible == "partly"
    assert store.current("demo", 4, head, "Dr Test") is None
    page.screenshot(path=str(ARTIFACTS / "dataset_verdict.png"), full_page=True)
    page.close()


def test_a_new_run_does_not_change_the_run_new_sessions_open(server, browser):
    """A run that appears later (here: a copy of ``tiny`` named to sort after it, as a finished job's run
    id would) is listed, but a new session still opens on the run it opened on before."""
    newer = server["home"] / "runs" / "99991231-235959-cnn1d-newer"
    shutil.copytree(server["home"] / "runs" / "tiny", newer, symlinks=False)
    for f in (newer, newer / "config.json"):  # written now, as a finished job's run is
        os.utime(f)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # a new session
        page.goto(server["url"])
        runs_box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").filter(
            has_text="Trained run")
        runs_box.wait_for(timeout=90_000)
        page.wait_for_function("() => location.search.includes('run=')", timeout=30_000)
        assert "run=tiny" in page.url
        assert "tiny" in runs_box.inner_html() and newer.name not in runs_box.inner_html()
        page.close()
    finally:
        shutil.rmtree(newer)
