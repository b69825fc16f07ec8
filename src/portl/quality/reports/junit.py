"""The JUnit XML report, for CI systems: one ``<testsuite>`` (the job), one ``<testcase>`` per check.

The mapping, chosen so that a CI build fails exactly when a check that should stop it did:

- a failed ``critical`` or ``warning`` check: ``<failure message=… type="critical|warning">`` with
  the observed and expected values in its text;
- a check that could not be computed (status ``error``): ``<error>``;
- a skipped check: ``<skipped message=…>``;
- an ``info`` check that failed or errored is visible but does not break the build: it stays a
  passing test case whose ``<system-out>`` says ``INFO: …``, and the suite's ``<properties>`` carry
  ``info_failed`` (how many) and ``info_failed.<check name>`` (its message). Properties sit on the
  suite, not on the test case, because the common JUnit schema (Jenkins' ``junit-10.xsd``, which
  GitLab and most readers follow) only allows them there.

Attributes ``tests``, ``failures``, ``errors``, ``skipped`` and ``time`` are on both the
``<testsuites>`` root and the ``<testsuite>``. Checks are not timed one by one: a test case's
``time`` is 0 and the suite's is the run's duration.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from portl.quality.reports.summary import duration_s, outcome_words
from portl.quality.results import ERROR, FAILED, SKIPPED, CheckResult, QualityReport

# Characters XML 1.0 cannot carry at all, even escaped (control characters from source data).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_junit(report: QualityReport) -> str:
    """The report as JUnit XML text (UTF-8, with its XML declaration)."""
    seconds = duration_s(report) or 0.0
    counts = {"tests": len(report.results), "failures": 0, "errors": 0, "skipped": 0}
    for result in report.results:
        kind = _kind(result)
        if kind:
            counts[kind] += 1
    totals = {k: str(v) for k, v in counts.items()} | {"time": f"{seconds:.3f}"}
    root = ET.Element("testsuites", {"name": "portl quality", **totals})
    suite = ET.SubElement(root, "testsuite", {"name": _text(report.job), **totals})
    if report.started_at:
        suite.set("timestamp", _text(report.started_at))
    _properties(ET.SubElement(suite, "properties"), report)
    for result in report.results:
        _testcase(suite, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _kind(result: CheckResult) -> str | None:
    """Which JUnit counter a check adds to: failures, errors, skipped, or none (passed, or info)."""
    if result.status == SKIPPED:
        return "skipped"
    if result.severity == "info":
        return None
    if result.status == FAILED:
        return "failures"
    if result.status == ERROR:
        return "errors"
    return None


def _properties(parent: ET.Element, report: QualityReport) -> None:
    info = [r for r in report.results if r.severity == "info" and r.status in (FAILED, ERROR)]
    values = [("run_id", report.run_id or ""), ("source", report.source), ("destination", report.destination or ""),
              ("outcome", outcome_words(report.status)), ("gate", report.gate), ("rows", str(report.rows)),
              ("run_status", report.run_status or ""), ("info_failed", str(len(info)))]
    values += [(f"info_failed.{r.name}", f"{r.status}: {r.message}") for r in info]
    for name, value in values:
        ET.SubElement(parent, "property", {"name": _text(name), "value": _text(value)})


def _testcase(suite: ET.Element, result: CheckResult) -> None:
    case = ET.SubElement(suite, "testcase", {"classname": f"portl.quality.{_text(result.check)}",
                                             "name": _text(result.name), "time": "0"})
    kind = _kind(result)
    body = _body(result)
    if kind == "failures":
        ET.SubElement(case, "failure", {"message": _text(result.message), "type": _text(result.severity)}).text = body
    elif kind == "errors":
        ET.SubElement(case, "error", {"message": _text(result.message), "type": "error"}).text = body
    elif kind == "skipped":
        ET.SubElement(case, "skipped", {"message": _text(result.message)})
    elif result.status in (FAILED, ERROR):  # info: shown, not counted
        ET.SubElement(case, "system-out").text = f"INFO ({result.status}, does not fail the build): " + body


def _body(result: CheckResult) -> str:
    lines = [result.message]
    if result.observed or result.expected:
        lines.append(f"observed: {result.observed or '-'}; expected: {result.expected or '-'}")
    if result.failing_rows:
        lines.append(f"failing rows: {result.failing_rows}")
    if result.columns:
        lines.append("columns: " + ", ".join(result.columns))
    missing = result.details.get("missing") if isinstance(result.details, dict) else None
    if isinstance(missing, list) and missing:
        lines.append("missing: " + ", ".join(str(m) for m in missing))
    return _text("\n".join(lines))


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))
