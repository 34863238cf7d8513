"""Property-based fuzzing of every parser of untrusted input (Hypothesis; a dev dependency).

The property is the same for every parser: whatever the bytes, it returns a valid result or raises
``DataError`` (one clear message) -- never another exception, never a traceback on a page. Inputs are
random bytes and, more usefully, *mutated valid files*: a correct WFDB header / CinC ``.mat`` / CSV /
NPY / SCP-code field with one field replaced by something hostile (negative or NaN rates, huge sample
counts, wrong lead names, truncated data, wrong dtypes).

``tests/test_fuzz.py`` runs every target with a small budget; ``python -m xand fuzz --examples N`` runs
them long. Reference: MacIver et al., "Hypothesis: a new approach to property-based testing", JOSS 2019.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xand.constants import LEADS
from xand.data.header import wfdb_checksum
from xand.errors import DataError

#: Exceptions a parser may raise on bad input: ``DataError`` (and its subclass for unknown names).
ALLOWED = (DataError,)


def _strategies():
    try:
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - the CLI says how to get it
        raise DataError(None, "Hypothesis is not installed", "pip install -r requirements-dev.txt") from exc
    return st




def _signal(seed: int, n: int) -> np.ndarray:
    """``(12, n)`` int16 ECG-like digital values (about +-1 mV at 1000/mV)."""
    t = np.arange(n) / 500.0
    rng = np.random.default_rng(seed)
    x = 800 * np.sin(2 * np.pi * 1.2 * t)[None] * rng.uniform(0.3, 1.0, (12, 1)) + rng.normal(0, 20, (12, n))
    return x.astype(np.int16)


#: One field of a valid header replaced by a hostile value (None: the valid file).
_HEADER_MUTATIONS = [None, ("rate", "-500"), ("rate", "0"), ("rate", "nan"), ("rate", "1e9"), ("rate", "abc"),
                     ("n", "0"), ("n", "-5"), ("n", str(10 ** 9)), ("gain", "0"), ("gain", "-1000"),
                     ("gain", "nan"), ("gain", "inf"), ("gain", "x"), ("fmt", "212"), ("fmt", "999"),
                     ("leads", "dup"), ("leads", "eleven"), ("body", "short"), ("body", "long"), ("text", "cut")]


def _wfdb_files(st, lengths: tuple[int, int] = (1000, 4000)):
    """A 12-lead format-16 WFDB record (header + .dat): valid, or with one hostile field."""
    @st.composite
    def build(draw):
        n = draw(st.integers(*lengths) | st.just(lengths[1]))
        mutation = draw(st.sampled_from(_HEADER_MUTATIONS))
        field = dict([mutation]) if mutation else {}
        leads = list(LEADS)
        if field.get("leads") == "dup":
            leads = ["I"] * 12
        elif field.get("leads") == "eleven":
            leads = leads[:11]
        sig = _signal(draw(st.integers(0, 2 ** 31 - 1)), n)
        lines = [f"rec {len(leads)} {field.get('rate', '500')} {field.get('n', n)}"]
        lines += [f"rec.dat {field.get('fmt', '16')} {field.get('gain', '1000')}/mV 16 0 {sig[i, 0]} "
                  f"{wfdb_checksum(sig[i])} 0 {lead}" for i, lead in enumerate(leads)]
        header = "\n".join(lines) + "\n"
        if field.get("text") == "cut":
            header = header[: draw(st.integers(0, len(header) - 1))]
        body = sig.T.astype("<i2").tobytes()
        if field.get("body") == "short":
            body = body[: draw(st.integers(0, len(body) - 1))]
        elif field.get("body") == "long":
            body += draw(st.binary(min_size=1, max_size=64))
        return [("rec.hea", header.encode()), ("rec.dat", body)]

    return build()


def _mat_bytes(st):
    """A CinC ``.mat`` holding ``val`` (v5 or v4, maybe compressed): valid, or with hostile shapes,
    dtypes, names, truncation or junk; with the shape its header declares and the signal whose
    checksums a header would carry."""
    import scipy.io

    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(["ok", "ok", "shape", "dtype", "name", "junk", "truncated", "two"]))
        n = draw(st.integers(1000, 3000))
        arr = _signal(draw(st.integers(0, 2 ** 31 - 1)), n)
        if kind == "shape":
            arr = arr[: draw(st.sampled_from([1, 11]))]
        elif kind == "dtype":
            arr = np.array([["x"] * n] * 12)
        full = arr if arr.shape == (12, n) and arr.dtype == np.int16 else _signal(0, n)
        if kind == "junk":
            return draw(st.binary(max_size=512)), (12, n), full
        mdict = {"val": arr} if kind != "name" else {"vals": arr}
        if kind == "two":
            mdict["other"] = arr
        buf = io.BytesIO()
        scipy.io.savemat(buf, mdict, format=draw(st.sampled_from(["5", "4"])),
                         do_compression=draw(st.booleans()))
        data = buf.getvalue()
        if kind == "truncated":
            data = data[: draw(st.integers(0, len(data) - 1))]
        return data, (12, n), full

    return build()


def _csv_bytes(st):
    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(["ok", "nan", "text", "ragged", "wide", "empty", "junk", "header", "index",
                                     "short_rows", "cr", "header_only"]))
        n = draw(st.integers(800, 3000))
        arr = (_signal(draw(st.integers(0, 2 ** 31 - 1)), n).T / 1000.0).round(4)
        text = "\n".join(",".join(map(str, r)) for r in arr)
        if kind == "nan":
            text = text.replace("0.", "nan", 1)
        elif kind == "text":
            text = "I,II,III\n" + text
        elif kind == "ragged":
            text += "\n1,2,3"
        elif kind == "wide":
            text = ",".join(["0.1"] * draw(st.integers(13, 5000)))
        elif kind == "empty":
            text = ""
        elif kind in ("header", "index", "short_rows", "header_only"):
            names = ",".join(LEADS)
            rows = text.split("\n")
            if kind == "index":  # 12 names over 13 values: an unnamed index column first
                rows = [f"{i},{r}" for i, r in enumerate(rows)]
            elif kind == "short_rows":
                rows = [r.rsplit(",", draw(st.integers(1, 11)))[0] for r in rows]
            elif kind == "header_only":
                rows = draw(st.sampled_from([[], ["# none"], [""]]))
            text = "\n".join([names] + rows)
        elif kind == "cr":
            text = text.replace("\n", "\r")
        elif kind == "junk":
            return draw(st.binary(max_size=400))
        return text.encode()

    return build()


def _npy_bytes(st):
    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(["ok", "object", "3d", "int", "inf", "junk", "fortran"]))
        n = draw(st.integers(800, 3000))
        arr = (_signal(draw(st.integers(0, 2 ** 31 - 1)), n) / 1000.0).astype(np.float32)
        if kind == "object":
            arr = np.array([{"a": 1}] * 12, dtype=object)
        elif kind == "3d":
            arr = arr[None]
        elif kind == "int":
            arr = (arr * 100).astype(np.int64)
        elif kind == "inf":
            arr[0, 0] = np.inf
        elif kind == "fortran":
            arr = np.asfortranarray(arr.T)
        elif kind == "junk":
            return draw(st.binary(max_size=400))
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=kind == "object")
        return buf.getvalue()

    return build()


def _scp_text(st):
    return st.one_of(
        st.text(max_size=80),
        st.sampled_from(["{'NORM': 100.0}", "{'IMI': 'x'}", "{'IMI': 150}", "{'IMI': -1}", "[1, 2]",
                         "__import__('os').system('true')", "{'NORM': 100.0, 'NORM ': 5}", "{}", "None",
                         "{'A': 1e400}", "{" * 200]),
    )


#: One hostile cell of a valid ``ptbxl_database.csv`` row (None: the valid file).
_DATABASE_MUTATIONS = [None, ("ecg_id", "1.5"), ("ecg_id", "x"), ("ecg_id", ""), ("ecg_id", "dup"),
                       ("patient_id", ""), ("patient_id", "nan"), ("strat_fold", "11"), ("strat_fold", "0"),
                       ("strat_fold", "x"), ("strat_fold", ""), ("scp_codes", "{'XYZ': 100.0}"),
                       ("scp_codes", "{'NORM': 101}"), ("scp_codes", "[1]"), ("scp_codes", "{"),
                       ("scp_codes", "{'NORM': 1e400}"), ("scp_codes", "{'IMI ': 50.0}"), ("scp_codes", ""),
                       ("filename_lr", "../../etc/passwd"), ("filename_lr", "/etc/passwd"), ("filename_lr", ""),
                       ("filename_lr", "records100/00000/99999_lr"), ("device", ""), ("age", "x"),
                       ("column", "drop"), ("column", "extra"), ("text", "cut"), ("text", "quote"),
                       ("cell", "any"), ("cell", "any"), ("cell", "any")]

_STATEMENTS = ("scp_code,description,diagnostic,diagnostic_class\n"
               "NORM,normal ECG,1.0,NORM\nIMI,inferior MI,1.0,MI\nNDT,non-diagnostic T,1.0,STTC\n"
               "LAFB,left anterior fascicular block,1.0,CD\nLVH,left ventricular hypertrophy,1.0,HYP\n"
               "SR,sinus rhythm,,\n")


def _database_files(st):
    """A 4-record PTB-XL folder (``ptbxl_database.csv``, ``scp_statements.csv``, format-16 records at
    100 Hz): valid, or with one hostile cell, column or cut."""
    @st.composite
    def build(draw):
        mutation = draw(st.sampled_from(_DATABASE_MUTATIONS))
        row = draw(st.integers(0, 3))
        cols = ["ecg_id", "patient_id", "age", "sex", "device", "scp_codes", "strat_fold", "filename_lr"]
        codes = ["{'NORM': 100.0, 'SR': 0.0}", "{'IMI': 100.0}", "{'NDT': 80.0}", "{'LVH': 50.0, 'LAFB': 100.0}"]
        rows = [{"ecg_id": str(i + 1), "patient_id": str(100 + i), "age": "60", "sex": str(i % 2),
                 "device": "CS-12", "scp_codes": codes[i], "strat_fold": str([1, 9, 10, 3][i]),
                 "filename_lr": f"records100/00000/{i + 1:05d}_lr"} for i in range(4)]
        if mutation == ("cell", "any"):  # any text in any cell: the space no list of mutations covers
            rows[row][draw(st.sampled_from(cols))] = draw(st.text(max_size=24))
        elif mutation and mutation[0] in cols:
            key, value = mutation
            rows[row][key] = rows[(row + 1) % 4][key] if value == "dup" else value
        elif mutation == ("column", "drop"):
            cols.remove(draw(st.sampled_from(["ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr"])))
        elif mutation == ("column", "extra"):
            cols.append("extra")
        def cell(v):
            return '"' + v.replace('"', '""') + '"'
        text = ",".join(cols) + "\n" + "".join(",".join(cell(r.get(c, "x")) for c in cols) + "\n" for r in rows)
        if mutation == ("text", "cut"):
            text = text[: draw(st.integers(0, len(text) - 1))]
        elif mutation == ("text", "quote"):
            text = text.replace('"', "", draw(st.integers(1, 9)))
        records = {}
        for i in range(4):
            sig = _signal(i, 1000)
            hea = f"{i + 1:05d}_lr 12 100 1000\n" + "".join(
                f"{i + 1:05d}_lr.dat 16 1000/mV 16 0 {sig[j, 0]} {wfdb_checksum(sig[j])} 0 {lead}\n"
                for j, lead in enumerate(LEADS))
            records[f"records100/00000/{i + 1:05d}_lr.hea"] = hea.encode()
            records[f"records100/00000/{i + 1:05d}_lr.dat"] = sig.T.astype("<i2").tobytes()
        return {"ptbxl_database.csv": text.encode(), "scp_statements.csv": _STATEMENTS.encode(), **records}

    return build()


@dataclass(frozen=True)
class Target:
    """One parser under fuzzing: ``strategy`` builds an input, ``call`` parses it."""

    name: str
    strategy: Callable
    call: Callable


def _upload(files) -> None:
    from xand.data.upload import parse_upload

    parse_upload(files, fs=500.0)


def _targets() -> list[Target]:
    from pathlib import Path

    from xand.data.matfile import load_val
    from xand.data.ptbxl import PTBXL

    def wfdb_upload(files):
        _upload(files)

    def mat_val(arg):
        data, shape, _ = arg
        load_val(data, "fuzz.mat", shape, max_bytes=10_000_000)

    def cinc_upload(arg):
        data, shape, sig = arg
        header = f"rec 12 500 {shape[1]}\n" + "".join(
            f"rec.mat 16+24 1000/mV 16 0 {sig[i, 0]} {wfdb_checksum(sig[i])} 0 {lead}\n" for i, lead in enumerate(LEADS))
        _upload([("rec.hea", header.encode()), ("rec.mat", data)])

    def csv_upload(data):
        _upload([("ecg.csv", data)])

    def npy_upload(data):
        _upload([("ecg.npy", data)])

    def scp_codes(text):
        PTBXL._parse_codes(Path("ptbxl_database.csv"), 1, text)

    def _folder(files):
        import tempfile

        tmp = tempfile.TemporaryDirectory(prefix="xand_fuzz_")
        for rel, data in files.items() if isinstance(files, dict) else files:
            path = Path(tmp.name) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return tmp

    def database(files):
        with _folder(files) as root:
            ds = PTBXL(root)
            ds.labels()
            for ecg_id in ds.meta.index:  # every listed record: a signal or one DataError
                ds.load(int(ecg_id), fs=100)

    def ptbxl_record(files):
        from xand.data.ptbxl import read_wfdb

        with _folder(files) as root:
            read_wfdb(Path(root) / "rec", expected_fs=None)

    return [
        Target("wfdb upload (.hea + .dat)", _wfdb_files, wfdb_upload),
        Target("CinC .mat val", _mat_bytes, mat_val),
        Target("CinC upload (.hea + .mat)", _mat_bytes, cinc_upload),
        Target("CSV upload", _csv_bytes, csv_upload),
        Target("NPY upload", _npy_bytes, npy_upload),
        Target("scp_codes field", _scp_text, scp_codes),
        Target("ptbxl_database.csv rows", _database_files, database),
        Target("PTB-XL record (read_wfdb)", lambda st: _wfdb_files(st, (4990, 5000)), ptbxl_record),
    ]


def target_names() -> list[str]:
    """Names of the fuzzed parsers."""
    return [t.name for t in _targets()]


def fuzz(name: str, examples: int = 50, seed: int | None = 0) -> dict:
    """Run one target's property for ``examples`` inputs; returns ``{"name", "examples", "seconds",
    "parsed", "refused"}`` (how many inputs parsed and how many were refused with a ``DataError``).

    Raises the first counter-example's exception (Hypothesis shrinks it first) when the parser raised
    anything but ``DataError``.
    """
    from hypothesis import HealthCheck, given, seed as hseed, settings

    st = _strategies()
    target = next((t for t in _targets() if t.name == name), None)
    if target is None:
        from xand.errors import UnknownNameError

        raise UnknownNameError("fuzz target", name, target_names())

    outcomes = {"parsed": 0, "refused": 0}

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(target.strategy(st))
    def prop(value):
        try:
            target.call(value)
            outcomes["parsed"] += 1
        except ALLOWED:
            outcomes["refused"] += 1

    if seed is not None:
        prop = hseed(seed)(prop)
    t0 = time.perf_counter()
    prop()
    return {"name": name, "examples": examples, "seconds": time.perf_counter() - t0, **outcomes}


__all__ = ["ALLOWED", "fuzz", "target_names"]
