"""The SCP statements of the synthetic set (``scp_statements.csv``, PTB-XL's columns)."""

from __future__ import annotations

import numpy as np

_STATEMENT_COLUMNS = ["description", "diagnostic", "form", "rhythm", "diagnostic_class",
                      "diagnostic_subclass", "Statement Category", "SCP-ECG Statement Description",
                      "AHA code", "aECG REFID", "CDISC Code", "DICOM Code"]


# code: (description, kind d/f/r, class, subclass, category, AHA code)
STATEMENTS: dict[str, tuple] = {
    "NORM": ("normal ECG", "d", "NORM", "NORM", "Normal/abnormal", 1),
    "IMI": ("inferior myocardial infarction", "d", "MI", "IMI", "Myocardial Infarction", 161),
    "ILMI": ("inferolateral myocardial infarction", "d", "MI", "IMI", "Myocardial Infarction", None),
    "ASMI": ("anteroseptal myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", 165),
    "AMI": ("anterior myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", 160),
    "ALMI": ("anterolateral myocardial infarction", "d", "MI", "AMI", "Myocardial Infarction", None),
    "LMI": ("lateral myocardial infarction", "d", "MI", "LMI", "Myocardial Infarction", 163),
    "ISC_": ("non-specific ischemic", "d", "STTC", "ISC_",
             "Basic roots for coding ST-T changes and abnormalities", 226),
    "ISCAL": ("ischemic in anterolateral leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCAS": ("ischemic in anteroseptal leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCLA": ("ischemic in lateral leads", "d", "STTC", "ISCA", "ischemic ST-T changes", None),
    "ISCIN": ("ischemic in inferior leads", "d", "STTC", "ISCI", "ischemic ST-T changes", None),
    "NST_": ("non-specific ST changes", "d", "STTC", "NST_",
             "Basic roots for coding ST-T changes and abnormalities", 145),
    "NDT": ("non-diagnostic T abnormalities", "d", "STTC", "STTC", "other ST-T descriptive statements", None),
    "LNGQT": ("long QT-interval", "d", "STTC", "STTC", "other ST-T descriptive statements", 148),
    "CRBBB": ("complete right bundle branch block", "d", "CD", "CRBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 106),
    "IRBBB": ("incomplete right bundle branch block", "d", "CD", "IRBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 105),
    "CLBBB": ("complete left bundle branch block", "d", "CD", "CLBBB",
              "Intraventricular and intra-atrial Conduction disturbances", 104),
    "IVCD": ("non-specific intraventricular conduction disturbance (block)", "d", "CD", "IVCD",
             "Intraventricular and intra-atrial Conduction disturbances", 107),
    "LAFB": ("left anterior fascicular block", "d", "CD", "LAFB/LPFB",
             "Intraventricular and intra-atrial Conduction disturbances", 101),
    "1AVB": ("first degree AV block", "d", "CD", "_AVB",
             "Sinus node dysfunction, atrial and AV-conduction defects", None),
    "LVH": ("left ventricular hypertrophy", "d", "HYP", "LVH", "Ventricular Hypertrophy", 142),
    "RVH": ("right ventricular hypertrophy", "d", "HYP", "RVH", "Ventricular Hypertrophy", 143),
    "LAO/LAE": ("left atrial overload/enlargement", "d", "HYP", "LAO/LAE", "Atrial statements", 140),
    "ABQRS": ("abnormal QRS", "f", None, None, "Normal/abnormal", None),
    "QWAVE": ("Q waves present", "f", None, None, "Other QRS morphology descriptive statements", None),
    "STD_": ("non-specific ST depression", "f", None, None,
             "Basic roots for coding ST-T changes and abnormalities", 502),
    "STE_": ("non-specific ST elevation", "f", None, None,
             "Basic roots for coding ST-T changes and abnormalities", 501),
    "INVT": ("inverted T-waves", "f", None, None, "other ST-T descriptive statements", 367),
    "LOWT": ("low amplitude T-waves", "f", None, None, "other ST-T descriptive statements", 366),
    "VCLVH": ("voltage criteria (QRS) for left ventricular hypertrophy", "f", None, None,
              "Ventricular Hypertrophy", None),
    "LPR": ("prolonged PR interval", "f", None, None,
            "Statements related to impulse formation (abnormalities)", 82),
    "SR": ("sinus rhythm", "r", None, None, "Statements related to impulse formation (abnormalities)", 20),
    "SBRAD": ("sinus bradycardia", "r", None, None,
              "Statements related to impulse formation (abnormalities)", 22),
    "SARRH": ("sinus arrhythmia", "r", None, None,
              "Statements related to impulse formation (abnormalities)", 23),
}


def statements_frame():
    """``scp_statements.csv`` as a DataFrame (index = statement code, PTB-XL columns)."""
    import pandas as pd

    rows = {}
    for code, (desc, kind, cls, sub, cat, aha) in STATEMENTS.items():
        rows[code] = {
            "description": desc,
            "diagnostic": 1.0 if kind == "d" else np.nan,
            "form": 1.0 if kind == "f" else np.nan,
            "rhythm": 1.0 if kind == "r" else np.nan,
            "diagnostic_class": cls, "diagnostic_subclass": sub, "Statement Category": cat,
            "SCP-ECG Statement Description": desc, "AHA code": "" if aha is None else str(aha),
            "aECG REFID": np.nan, "CDISC Code": np.nan, "DICOM Code": np.nan,
        }
    df = pd.DataFrame.from_dict(rows, orient="index")[_STATEMENT_COLUMNS]
    return df
