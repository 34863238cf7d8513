"""Reviews in the app through ``streamlit.testing.v1.AppTest``: the verdict form of the Review page saves
into the review database (and an edit keeps the history), and the Reviews page shows progress, agreement,
the verdicts with their links, and the CSV downloads, with an empty database and with saved verdicts.

Environment: the app home of ``test_app.py`` (synthetic set + tiny run, in the pytest temp folder), and a
review database of each test's own in ``tmp_path`` (``XAND_REVIEWS_URL``).
"""

from __future__ import annotations

import pytest

from test_app import app_home, env, heads_of, metric, run_app  # noqa: F401 - fixtures used by name
from xand.reviews.store import ReviewStore, Verdict, default_url

pytestmark = pytest.mark.slow  # shares test_app's one short training run


@pytest.fixture()
def reviews_env(env, tmp_path, monkeypatch):
    url = default_url(tmp_path / "reviews")
    monkeypatch.setenv("XAND_REVIEWS_URL", url)
    return env, url


def widget(items, label_start: str):
    for w in items:
        if w.label.startswith(label_start):
            return w
    raise AssertionError(f"no widget labelled {label_start!r}; have {[w.label for w in items]}")


def frame_with(at, *columns: str):
    """The first table on the page with these columns (display-only tables carry no key in AppTest)."""
    for df in at.dataframe:
        if set(columns) <= set(df.value.columns):
            return df.value
    raise AssertionError(f"no table with columns {columns}")


def fill_and_save(at, prediction: str, plausible: str, **extra):
    widget(at.radio, "The model says").set_value(prediction)
    widget(at.radio, "Is the attribution clinically plausible").set_value(plausible)
    if "leads" in extra:
        widget(at.multiselect, "Leads").set_value(extra["leads"])
    if "start" in extra:
        widget(at.number_input, "From (s)").set_value(extra["start"])
        widget(at.number_input, "To (s)").set_value(extra["end"])
    if "note" in extra:
        widget(at.text_area, "Note").input(extra["note"])
    widget(at.button, "Save verdict").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_verdict_form_saves_and_keeps_history(reviews_env):
    home, url = reviews_env
    head = heads_of(home)[0]
    at = run_app({"record": 12, "head": head}, page="pages/review.py")
    assert any("Enter your name" in i.value for i in at.info)
    at.text_input(key="reviewer_input").input("Dr Test").run()
    assert any("No verdict of yours yet" in c.value for c in at.caption)

    fill_and_save(at, "disagree", "partly", leads=["V2", "II"], start=1.5, end=2.25, note="ST change in V2")
    assert any("Saved version 1" in s.value for s in at.success)
    with ReviewStore(url) as store:
        cur = store.current_verdicts()
        assert len(cur) == 1
        row = cur.iloc[0]
        assert (row["dataset"], row["ecg_id"], row["head"], row["reviewer"]) == ("demo", 12, head, "Dr Test")
        assert (row["prediction"], row["plausible"], row["leads"]) == ("disagree", "partly", "II,V2")
        assert (row["start_s"], row["end_s"], row["note"]) == (1.5, 2.25, "ST change in V2")
        assert (row["run_id"], row["method"]) == ("tiny", "ig")
        assert f"{row['probability']:.3f}" == metric(at, f"Probability {head}")

    # an edit is a new version; the first stays in the history
    fill_and_save(at, "agree", "yes")
    assert any("Saved version 2" in s.value for s in at.success)
    assert any("History: 2 saved versions" in c.value for c in at.caption)
    with ReviewStore(url) as store:
        hist = store.history("demo", 12, head, "Dr Test")
        assert list(hist["prediction"]) == ["disagree", "agree"] and list(hist["revision"]) == [1, 2]
        assert store.current("demo", 12, head, "Dr Test").plausible == "yes"

    # the name is remembered across pages, and the verdict shows on the Reviews page
    at.switch_page("pages/reviews.py").run()
    assert not at.exception
    assert metric(at, "Verdicts") == "1" and metric(at, "Edits kept") == "1"
    at.switch_page("pages/review.py").run()
    assert at.text_input(key="reviewer_input").value == "Dr Test"
    assert any("Your current verdict" in m.value and "agree" in m.value for m in at.markdown)


def test_verdict_form_asks_for_both_answers(reviews_env):
    home, url = reviews_env
    at = run_app({"record": 3, "head": heads_of(home)[0]}, page="pages/review.py")
    at.text_input(key="reviewer_input").input("Dr Test").run()
    widget(at.radio, "The model says").set_value("agree")
    widget(at.button, "Save verdict").click().run()
    assert any("Choose whether you agree" in e.value for e in at.error)
    fill_and_save(at, "agree", "yes", start=3.0, end=1.0)  # the core's validation reaches the reviewer
    assert any("Not saved" in e.value and "not after its start" in e.value for e in at.error)
    with ReviewStore(url) as store:
        assert store.count() == 0


def test_reviews_page_empty_database(reviews_env):
    at = run_app(page="pages/reviews.py")
    assert any("No verdicts yet" in i.value for i in at.info)
    assert metric(at, "Verdicts") == "0"
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Current verdicts (CSV)", "Full history (CSV)"]


def test_reviews_page_with_verdicts(reviews_env):
    home, url = reviews_env
    head, other = heads_of(home)[:2]
    with ReviewStore(url) as store:
        for i, (a, b) in enumerate([("agree", "agree"), ("agree", "disagree"), ("disagree", "disagree"),
                                    ("agree", "agree")]):
            store.save_verdict(Verdict("demo", i, head, "Ann", a, "yes", run_id="tiny", method="ig"))
            store.save_verdict(Verdict("demo", i, head, "Bob", b, "yes"))
        store.save_verdict(Verdict("demo", 0, head, "Bob", "disagree", "no", note="changed my mind"))
        store.save_verdict(Verdict("demo", 7, other, "Ann", "agree", "partly"))
        store.save_verdict(Verdict("ptbxl", 7, other, "Cid", "agree", "partly"))  # another dataset
    at = run_app(page="pages/reviews.py")
    assert not at.info or not any("No verdicts yet" in i.value for i in at.info)
    assert metric(at, "Verdicts") == "9" and metric(at, "Reviewers") == "2"
    assert metric(at, "Records reviewed") == "5" and metric(at, "Edits kept") == "1"

    pivot = frame_with(at, head, other)
    assert int(pivot.loc["Ann", head]) == 4 and int(pivot.loc["Bob", head]) == 4
    assert int(pivot.loc["Ann", other]) == 1

    agr = frame_with(at, "kappa", "agreement %")
    row = agr[(agr["head"] == head) & (agr["field"] == "prediction")].iloc[0]
    # current: Ann agree,agree,disagree,agree; Bob disagree,disagree,disagree,agree -> p_o = 2/4
    # p_e = (3/4)(1/4) + (1/4)(3/4) = 3/8; kappa = (1/2 - 3/8)/(5/8) = 0.2
    assert row["shared records"] == 4 and row["agreement %"] == pytest.approx(50.0)
    assert row["kappa"] == pytest.approx(0.2)

    verdicts = at.dataframe(key="rv_verdicts").value
    assert len(verdicts) == 9
    ann0 = verdicts[(verdicts["reviewer"] == "Ann") & (verdicts["ecg_id"] == 0)].iloc[0]
    # the link names the dataset first: a new tab must not open record 0 of another dataset
    assert ann0["open"] == f"review?record=0&data=demo&run=tiny&head={head}&method=ig"
    bob0 = verdicts[(verdicts["reviewer"] == "Bob") & (verdicts["ecg_id"] == 0)].iloc[0]
    assert bob0["revision"] == 2 and bob0["note"] == "changed my mind"

    # selecting a row shows that verdict's history
    at.session_state["rv_verdicts"] = {"selection": {"rows": [int(bob0.name)], "columns": [], "cells": []}}
    at.run()
    hist = frame_with(at, "dataset", "revision")  # the verdicts table has no dataset column
    assert list(hist["revision"]) == [1, 2] and list(hist["prediction"]) == ["agree", "disagree"]
    assert any(f"Record 0 · {head} · Bob" in m.value for m in at.markdown)

    at.multiselect(key="rv_reviewers").set_value(["Bob"]).run()
    assert set(at.dataframe(key="rv_verdicts").value["reviewer"]) == {"Bob"}
    at.multiselect(key="rv_pred").set_value(["agree"]).run()
    assert list(at.dataframe(key="rv_verdicts").value["ecg_id"]) == [3]

    at.multiselect(key="rv_pred").set_value([]).run()
    at.selectbox(key="rv_dataset").set_value("ptbxl").run()  # Bob is not a reviewer there: filter dropped
    assert not at.exception
    v = at.dataframe(key="rv_verdicts").value
    assert list(v["reviewer"]) == ["Cid"] and v["open"].isna().all()  # not the sidebar's dataset: no link


def test_a_folder_named_demo_is_not_filed_under_the_synthetic_sets_key(tmp_path):
    """The hardening issue's probe: a second dataset folder also named ``demo`` shared the demo set's key."""
    from pages.common import AppConfig, Selection
    from pages.common.reviews_ui import dataset_name

    cfg = AppConfig(home=tmp_path)
    synthetic = Selection(cfg, cfg.demo_dir, cfg.demo_dir, True, None, "MI", "ig", True)
    other = Selection(cfg, tmp_path / "elsewhere" / "demo", None, False, None, "MI", "ig", True)
    ptbxl = Selection(cfg, tmp_path / "ptbxl", None, False, None, "MI", "ig", True)
    assert dataset_name(synthetic) == "demo"
    assert dataset_name(other) != "demo" and "demo" in dataset_name(other)
    assert dataset_name(ptbxl) == "ptbxl"
