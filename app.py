"""XAND review viewer: ``streamlit run app.py``.

Browse PTB-XL records, review one ECG in the clinical 12-lead layout with where the model looked (ATTR)
against the clinical region (CLIN), and compare heads on one ECG. Research grade, not a medical device.
Configuration: environment variables (``XAND_HOME``, ``XAND_DATA_DIR``, ``XAND_RUNS_DIR``, ...; see
``pages/common/__init__.py:AppConfig``) or the sidebar. Page scripts are ``pages/*.py``; shared page code
is the ``pages.common`` package (a sub-package, so Streamlit's legacy ``pages/`` discovery never lists it
as a page; see ``pages.common.page_selection`` for the one legacy-mode case).
"""

from __future__ import annotations

import time

import streamlit as st

from pages.common import DISCLAIMER, AppConfig, ensure_dataset, sidebar
from pages.common.train_panel import train_panel

st.set_page_config(page_title="XAND review", page_icon=":material/ecg_heart:", layout="wide")

MENU = [  # (script, title, icon, url path); the first is the default page, at the root URL
    ("pages/browse.py", "Browse", ":material/table_rows:", None),
    ("pages/review.py", "Review", ":material/monitor_heart:", "review"),
    ("pages/compare.py", "Compare heads", ":material/compare:", "compare"),
    ("pages/evaluate.py", "Evaluate", ":material/monitoring:", "evaluate"),
    ("pages/reviews.py", "Reviews", ":material/rate_review:", "reviews"),
    ("pages/upload.py", "Upload ECG", ":material/upload_file:", "upload"),
]
PAGES = [st.Page(script, title=title, icon=icon, url_path=path, default=path is None)
         for script, title, icon, path in MENU]
browse, review = PAGES[0], PAGES[1]
page = st.navigation(PAGES, position="hidden")
# The menu, drawn here rather than by Streamlit (.streamlit/config.toml: showSidebarNavigation = false)
# so that no list of the pages/ folder's file names flashes up before it on the first load.
with st.sidebar.container(key="nav"):
    for p, (_, title, icon, _) in zip(PAGES, MENU):
        st.page_link(p, label=title, icon=icon)

# A shared link to the root URL with a record (``/?record=123&head=MI``) opens that record in Review.
if not st.session_state.get("_landed"):
    st.session_state["_landed"] = True
    if page is browse and "record" in st.query_params:
        st.switch_page(review, query_params=st.query_params.to_dict())

st.session_state["_run_started"] = time.perf_counter()  # pages report their server time
sel = sidebar(AppConfig())
train_panel(sel)  # the sidebar's "Train" panel (background training jobs)
st.session_state["_selection"] = sel
st.caption(f"⚠️ {DISCLAIMER}")
if ensure_dataset(sel):
    page.run()
