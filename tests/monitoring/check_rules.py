#!/usr/bin/python3
"""Check the alert rules against their runbooks and unit tests.

    tests/monitoring/check_rules.py [--rules FILE] [--runbooks FILE] [--tests DIR]

Defaults: monitoring/rules/alerts.yml, docs/runbooks.md and
tests/monitoring/rules/ of this repository. Checks that

- no rule group sets `interval:` (the global evaluation interval applies);
- every alert has a unique name, the labels `severity` (critical, warning,
  info) and `service` (books, orders, worker, prometheus; or
  `{{ $labels.job }}` when the expression selects only those jobs and keeps
  the job label), and the annotations `summary`, `description` (templated
  with $labels or $value) and `runbook`;
- every runbook is RUNBOOK_BASE#<anchor>, the anchor is the alert's name in
  lower case and is the GitHub anchor of a `## ` heading of the runbooks;
- every `## ` heading of the runbooks is an alert's name;
- every alert has a promtool unit test where it fires (with its summary
  checked) and one where it must stay quiet (exp_alerts empty), in test files
  whose rule_files point at the rules checked here.

Exits 1 listing every problem found, 0 otherwise."""

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_BASE = "https://example.org/bookstore/docs/runbooks.md"
SEVERITIES = {"critical", "warning", "info"}
SERVICES = {"books", "orders", "worker", "prometheus"}
JOB_TEMPLATE = "{{ $labels.job }}"
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+$")


def github_anchor(text, seen):
    """The anchor GitHub gives a heading: lower case, punctuation other than
    '-' and '_' dropped, spaces to '-', '-1', '-2'… for repeats."""
    anchor = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    n = seen.get(anchor, 0)
    seen[anchor] = n + 1
    return anchor if n == 0 else f"{anchor}-{n}"


def runbook_headings(path):
    """[(level, text, anchor, line number)] of the Markdown headings outside
    fenced code blocks, anchors numbered as GitHub does."""
    headings, seen, fence = [], {}, None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        marker = re.match(r"^\s*(```+|~~~+)", line)
        if marker:
            if fence is None:
                fence = marker.group(1)[:3]
            elif marker.group(1).startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            headings.append((len(m.group(1)), m.group(2), github_anchor(m.group(2), seen), number))
    return headings


def job_matchers(expr):
    """The values every job matcher of expr allows (None: a matcher we cannot
    enumerate, such as job!="x" or a regex with metacharacters)."""
    allowed = []
    for op, value in re.findall(r'\bjob\s*(=~|!~|!=|=)\s*"([^"]*)"', expr):
        if op == "=":
            allowed.append({value})
        elif op == "=~" and re.fullmatch(r"[\w-]+(\|[\w-]+)*", value):
            allowed.append(set(value.split("|")))
        else:
            allowed.append(None)
    return allowed


def check_service_label(name, service, expr, errors):
    if service in SERVICES:
        return
    if service != JOB_TEMPLATE:
        errors.append(f"{name}: label service {service!r} is not one of {sorted(SERVICES)} "
                      f"nor {JOB_TEMPLATE!r}")
        return
    matchers = job_matchers(expr)
    if not matchers:
        errors.append(f"{name}: service is {JOB_TEMPLATE!r} but the expression has no job matcher")
    for allowed in matchers:
        if allowed is None or not allowed <= SERVICES:
            errors.append(f"{name}: service is {JOB_TEMPLATE!r} but a job matcher allows "
                          f"{'anything' if allowed is None else sorted(allowed - SERVICES)}")
    for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        if "job" not in [g.strip() for g in grouping.split(",")]:
            errors.append(f"{name}: service is {JOB_TEMPLATE!r} but 'by ({grouping})' drops the job label")
    if re.search(r"\bwithout\s*\(", expr):
        errors.append(f"{name}: service is {JOB_TEMPLATE!r}; use 'by (job, …)', not 'without'")


def check_rules(rules_path, anchors, errors):
    """{alert name: rule}; problems appended to errors."""
    try:
        doc = yaml.safe_load(rules_path.read_text())
    except (OSError, yaml.YAMLError) as e:
        errors.append(f"{rules_path}: cannot load: {e}")
        return {}
    alerts = {}
    groups = (doc or {}).get("groups") or []
    if not groups:
        errors.append(f"{rules_path}: no rule groups")
    for group in groups:
        gname = group.get("name", "?")
        if "interval" in group:
            errors.append(f"group {gname}: sets interval: {group['interval']} (leave it to the global setting)")
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            if name is None:
                continue  # a recording rule
            if not ALERT_NAME.match(name):
                errors.append(f"{name!r}: an alert name should be CamelCase letters and digits")
            if name in alerts:
                errors.append(f"{name}: defined twice")
            alerts[name] = rule
            expr = str(rule.get("expr") or "")
            if not expr.strip():
                errors.append(f"{name}: no expr")
            labels = rule.get("labels") or {}
            annotations = rule.get("annotations") or {}
            severity = labels.get("severity")
            if severity not in SEVERITIES:
                errors.append(f"{name}: label severity is {severity!r}, not one of {sorted(SEVERITIES)}")
            if "service" not in labels:
                errors.append(f"{name}: no service label")
            else:
                check_service_label(name, labels["service"], expr, errors)
            for key in ("summary", "description", "runbook"):
                if not str(annotations.get(key) or "").strip():
                    errors.append(f"{name}: no {key} annotation")
            description = str(annotations.get("description") or "")
            if description and "$labels" not in description and "$value" not in description:
                errors.append(f"{name}: the description uses neither $labels nor $value")
            runbook = str(annotations.get("runbook") or "")
            if runbook:
                expected = f"{RUNBOOK_BASE}#{name.lower()}"
                if runbook != expected:
                    errors.append(f"{name}: runbook is {runbook!r}, expected {expected!r}")
                anchor = runbook.partition("#")[2]
                if anchor not in anchors:
                    errors.append(f"{name}: runbook anchor #{anchor} is no '## ' heading of the runbooks")
    return alerts


def check_tests(tests_dir, rules_path, alerts, errors):
    files = sorted(tests_dir.glob("*_test.yml"))
    if not files:
        errors.append(f"{tests_dir}: no *_test.yml files")
        return 0
    fires, quiet = {}, {}
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            errors.append(f"{path}: cannot load: {e}")
            continue
        targets = {(path.parent / f).resolve() for f in doc.get("rule_files") or []}
        if rules_path.resolve() not in targets:
            errors.append(f"{path}: rule_files {doc.get('rule_files')} do not include {rules_path}")
        for case in doc.get("tests") or []:
            for t in case.get("alert_rule_test") or []:
                name = t.get("alertname")
                if name not in alerts:
                    errors.append(f"{path}: tests an unknown alert {name!r}")
                    continue
                expected = t.get("exp_alerts") or []
                where = f"{path.name}: {case.get('name', '?')} at {t.get('eval_time')}"
                if not expected:
                    quiet.setdefault(name, []).append(where)
                    continue
                fires.setdefault(name, []).append(where)
                for alert in expected:
                    if "summary" not in (alert.get("exp_annotations") or {}):
                        errors.append(f"{where}: an expected {name} alert does not check its summary")
    for name in alerts:
        if name not in fires:
            errors.append(f"{name}: no unit test where it fires")
        if name not in quiet:
            errors.append(f"{name}: no unit test where it must stay quiet (exp_alerts: [])")
    return len(files)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "monitoring/rules/alerts.yml")
    parser.add_argument("--runbooks", type=Path, default=ROOT / "docs/runbooks.md")
    parser.add_argument("--tests", type=Path, default=ROOT / "tests/monitoring/rules")
    args = parser.parse_args(argv)

    errors = []
    try:
        headings = runbook_headings(args.runbooks)
    except OSError as e:
        errors.append(f"{args.runbooks}: cannot read: {e}")
        headings = []
    sections = [(text, anchor, line) for level, text, anchor, line in headings if level == 2]
    anchors = {anchor for _, anchor, _ in sections}
    alerts = check_rules(args.rules, anchors, errors)

    seen = set()
    for text, anchor, line in sections:
        if text not in alerts:
            errors.append(f"{args.runbooks}:{line}: heading '## {text}' is not the name of an alert")
        if text in seen:
            errors.append(f"{args.runbooks}:{line}: heading '## {text}' appears twice")
        seen.add(text)
    n_tests = check_tests(args.tests, args.rules, alerts, errors)

    if errors:
        print(f"check_rules: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print(f"check_rules: OK: {len(alerts)} alerts, each with labels, annotations, a runbook "
          f"section of {args.runbooks.name} and firing and quiet unit tests "
          f"({len(sections)} sections, {n_tests} test files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
