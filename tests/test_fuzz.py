"""Every parser of untrusted input, fuzzed with a small budget (``python -m xand fuzz`` runs it long):
valid files parse, hostile ones are refused with one DataError, nothing else escapes."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis", reason="Hypothesis is a dev dependency (requirements-dev.txt)")

from xand.fuzzing import fuzz, target_names  # noqa: E402


@pytest.mark.parametrize("name", target_names())
def test_a_parser_returns_a_result_or_one_clear_error(name):
    r = fuzz(name, examples=300, seed=0)  # the CI budget of the hardening issue: >= 300 per reader
    assert r["parsed"] + r["refused"] >= 300
    assert r["refused"] > 0  # the hostile mutations were generated and refused
    if name != "scp_codes field":  # free text rarely happens to be a valid dict literal
        assert r["parsed"] > 0  # and the valid files were generated and accepted


def test_the_fuzz_command_reports_every_target(capsys):
    from xand.cli import main

    assert main(["fuzz", "--examples", "5", "--seed", "1", "--targets", "NPY upload", "scp_codes field"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok   ") == 2 and "refused with a clear message" in out


def test_url_parameters_never_break_out_or_crash():
    """The URL's ``data`` parameter and any text echoed from a URL: a folder or one fixed reason (never a
    traceback, never a different answer for a folder that exists), and a code span that cannot be left."""
    from hypothesis import given, settings, strategies as st

    from pages.common import dataset_from_token, inline_code

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.text(max_size=300))
    def prop(token):
        folder, problem = dataset_from_token(token)  # found: a 300-character name raised OSError
        assert problem in (None, "it is not a readable PTB-XL folder on this server")
        shown = inline_code(token)
        assert shown.startswith("`") and shown.endswith("`") and shown.count("`") == 2
        assert "\n" not in shown and len(shown) <= 160 + 3

    prop()
