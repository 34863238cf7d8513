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

browse = st.Page("pages/browse.py", title="Browse", icon=":material/table_rows:", default=True)  # at the root URL
review = st.Page("pages/review.py", title="Review", icon=":material/monitor_heart:", url_path="review")
compare = st.Page("pages/compare.py", title="Compare heads", icon=":material/compare:", url_path="compare")
evaluate = st.Page("pages/evaluate.py", title="Evaluate", icon=":material/monitoring:", url_path="evaluate")
reviews = st.Page("pages/reviews.py", title="Reviews", icon=":material/rate_review:", url_path="reviews")
upload = st.Page("pages/upload.py", title="Upload ECG", icon=":material/upload_file:", url_path="upload")
PAGES = [browse, review, compare, evaluate, reviews, upload]
page = st.navigation(PAGES, position="hidden")
# The menu, drawn here rather than by Streamlit (.streamlit/config.toml: showSidebarNavigation = false)
# so that no list of the pages/ folder's file names flashes up before it on the first load.
with st.sidebar.container(key="nav"):
    for p in PAGES:
        st.page_link(p, label=p.title, icon=p.icon)

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
