"""What every page of the viewer shares, split by concept (each module says what it holds):

``config`` (``AppConfig``, ``Selection``), ``text`` (formatting), ``services`` (cached runs, arrays, predictors,
stored sanity results), ``cohort`` (the records table, probabilities, filters), ``explain_view`` (one record's
``View``), ``state`` (URL and sidebar).

Pages stay thin: they call these functions, which call ``xand`` for all the work. Choices live in the URL
(``?data=demo&record=123&head=MI&method=ig``) so that a link opens exactly the same view for a colleague.
"""

from __future__ import annotations

from pages.common.config import (  # noqa: F401 - the pages' one import
    PROJECT,
    DISCLAIMER,
    STATUS_TEXT,
    DEMO_LABEL,
    PTBXL_LABEL,
    AppConfig,
    Selection,
)
from pages.common.text import (  # noqa: F401 - the pages' one import
    fmt_num,
    fmt_score,
    record_header,
    status_of,
)
from pages.common.services import (  # noqa: F401 - the pages' one import
    EXPLAIN_LOCK,
    PREFETCH_BUSY,
    STOPPING,
    WORKERS,
    stop_workers,
    start_worker,
    list_runs,
    is_demo_run,
    default_run,
    short_path,
    train_hint,
    set_torch_threads,
    attribution_methods,
    get_prepared,
    get_predictor,
    run_stamp,
    sanity_result,
    sanity_for,
    method_choice,
    run_provenance,
    predictor_for,
    get_dataset,
    threshold_of,
)
from pages.common.cohort import (  # noqa: F401 - the pages' one import
    predictions_file,
    ensure_probabilities,
    probability_job,
    records_table,
    label_summary,
    Filters,
    apply_filters,
    PROBABILITIES_PENDING,
    unapplied_filters,
    current_filters,
    table_for,
    current_record,
    cohort_ids,
)
from pages.common.explain_view import (  # noqa: F401 - the pages' one import
    View,
    FIDUCIAL_SOURCES,
    explain_view,
    prefetch,
    view_for,
)
from pages.common.state import (  # noqa: F401 - the pages' one import
    DEMO_TOKEN,
    dataset_token,
    dataset_from_token,
    inline_code,
    choose,
    kept,
    review_query,
    set_url,
    sidebar,
    ensure_dataset,
    write_demo_set,
    page_selection,
)
