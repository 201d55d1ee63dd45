#!/usr/bin/env python3
"""Structural checks of the Grafana dashboards and their provisioning.

No Grafana package exists in Debian 12, so the dashboards are not rendered;
this checks what Grafana's file provisioning and the Prometheus datasource
need instead.

As a module:
    dashboard_exprs(root, rate_interval="1m")
        -> [(dashboard_file, panel_title, refId, expr), ...]
        every target of every panel (panels inside collapsed rows included),
        with Grafana's $__rate_interval replaced by rate_interval, ready to be
        sent to Prometheus as they are.
    validate(root) -> [error message, ...]   ([] when everything is right)

root is the monitoring directory (the one holding dashboards/); the
repository root or the dashboards directory itself are accepted too.

As a script:
    python3 tests/monitoring/dashboards.py [monitoring_dir]
runs validate() (and `promtool check rules` on every expr when promtool is
installed), prints what it found and exits 1 on any error.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

DEFAULT_MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
PROVIDER_PATH = "/usr/share/bookstore-monitoring/dashboards"
RATE_INTERVAL = "$__rate_interval"
# $var, ${var}, ${var:fmt}, [[var]]: Grafana's template variable syntaxes.
# (A regex anchor in a label matcher, e.g. =~"a|b$", is not followed by a
# word character and does not match.)
VARIABLE_RE = re.compile(r"\$(\w+)|\$\{([^}]*)\}|\[\[([^\]]*)\]\]")
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge", "row"}
# The histograms whose buckets carry trace ids as exemplars (OpenMetrics): a
# latency graph over one of them asks Grafana for the exemplars too.
EXEMPLAR_HISTOGRAMS = ("http_request_duration_seconds", "books_request_duration_seconds",
                       "worker_job_duration_seconds")
GRID_COLUMNS = 24


# --------------------------------------------------------------------------- paths

def dashboards_dir(root):
    root = Path(root)
    for candidate in (root / "dashboards", root / "monitoring" / "dashboards"):
        if candidate.is_dir():
            return candidate
    return root


def dashboard_files(root):
    return sorted(dashboards_dir(root).glob("*.json"))


def provisioning_dir(root):
    return dashboards_dir(root) / "provisioning"


# --------------------------------------------------------------------------- panels

def iter_panels(dashboard):
    """Every panel: top-level ones and those nested in (collapsed) rows."""
    for panel in dashboard.get("panels") or []:
        yield panel
        if isinstance(panel, dict):
            for nested in panel.get("panels") or []:
                yield nested


def dashboard_exprs(root=DEFAULT_MONITORING, rate_interval="1m"):
    """(dashboard_file, panel_title, refId, expr) for every target of every
    panel, $__rate_interval replaced by rate_interval. Unparsable files are
    skipped here (validate() reports them)."""
    out = []
    for path in dashboard_files(root):
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for panel in iter_panels(dashboard):
            if not isinstance(panel, dict):
                continue
            for target in panel.get("targets") or []:
                if not isinstance(target, dict) or "expr" not in target:
                    continue
                expr = str(target["expr"]).replace(RATE_INTERVAL, rate_interval)
                out.append((path.name, panel.get("title"), target.get("refId"), expr))
    return out


# --------------------------------------------------------------------------- provisioning

def _load_yaml(path, errors):
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        errors.append(f"{path}: cannot read: {e}")
        return None
    except yaml.YAMLError as e:
        errors.append(f"{path}: invalid YAML: {e}")
        return None
    if not isinstance(data, dict):
        errors.append(f"{path}: not a YAML mapping")
        return None
    if data.get("apiVersion") != 1:
        errors.append(f"{path}: apiVersion is {data.get('apiVersion')!r}, expected 1")
    return data


def _provisioned(root, kind, key, errors):
    """(where, item) for every mapping in the `key` list of the provisioning
    files under provisioning/<kind>/; problems go to errors."""
    files = sorted((provisioning_dir(root) / kind).glob("*.y*ml"))
    if not files:
        errors.append(f"{provisioning_dir(root) / kind}: no {kind} provisioning file")
    for path in files:
        data = _load_yaml(path, errors)
        if data is None:
            continue
        items = data.get(key)
        if not isinstance(items, list) or not items:
            errors.append(f"{path}: no '{key}' list")
            continue
        for i, item in enumerate(items):
            where = f"{path}: {key}[{i}]"
            if isinstance(item, dict):
                yield where, item
            else:
                errors.append(f"{where}: not a mapping")


def check_datasources(root, errors):
    """Checks the provisioned datasources; returns the set of Prometheus
    datasource uids they provide."""
    uids = set()
    for where, ds in _provisioned(root, "datasources", "datasources", errors):
        for key in ("name", "type", "uid", "access", "url"):
            if not ds.get(key):
                errors.append(f"{where}: missing {key}")
        if ds.get("type") != "prometheus":
            errors.append(f"{where}: type is {ds.get('type')!r}, expected prometheus")
            continue
        if ds.get("access") not in (None, "proxy"):
            errors.append(f"{where}: access is {ds.get('access')!r}, expected proxy")
        interval = (ds.get("jsonData") or {}).get("timeInterval")
        if not interval:
            errors.append(f"{where}: jsonData.timeInterval (the scrape interval) missing")
        elif not re.fullmatch(r"\d+(ms|s|m|h)", str(interval)):
            errors.append(f"{where}: jsonData.timeInterval {interval!r} is not a duration")
        if ds.get("uid"):
            uids.add(ds["uid"])
    return uids


def check_dashboard_providers(root, errors):
    for where, provider in _provisioned(root, "dashboards", "providers", errors):
        for key in ("name", "folder", "type", "disableDeletion", "updateIntervalSeconds",
                    "allowUiUpdates", "options"):
            if key not in provider:
                errors.append(f"{where}: missing {key}")
        if provider.get("type") != "file":
            errors.append(f"{where}: type is {provider.get('type')!r}, expected file")
        interval = provider.get("updateIntervalSeconds")
        if "updateIntervalSeconds" in provider and (
                not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0):
            errors.append(f"{where}: updateIntervalSeconds {interval!r} is not a positive integer")
        options = provider.get("options") or {}
        dash_path = str(options.get("path") or "")
        if not dash_path:
            errors.append(f"{where}: options.path missing")
        elif not dash_path.rstrip("/").endswith("/dashboards"):
            errors.append(f"{where}: options.path {dash_path!r} does not end with /dashboards "
                          f"(the package installs monitoring/dashboards/ as {PROVIDER_PATH})")
        if "foldersFromFilesStructure" not in options:
            errors.append(f"{where}: options.foldersFromFilesStructure missing")


# --------------------------------------------------------------------------- dashboards

def _check_grid(where, pos, errors):
    if not isinstance(pos, dict):
        errors.append(f"{where}: no gridPos")
        return False
    ok = True
    for key in ("h", "w", "x", "y"):
        value = pos.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            errors.append(f"{where}: gridPos.{key} is {value!r}, expected an integer >= 0")
            ok = False
    if not ok:
        return False
    if pos["w"] < 1 or pos["h"] < 1:
        errors.append(f"{where}: gridPos has zero width or height")
        return False
    if pos["x"] + pos["w"] > GRID_COLUMNS:
        errors.append(f"{where}: gridPos x={pos['x']} w={pos['w']} is wider than "
                      f"{GRID_COLUMNS} columns")
        return False
    return True


def _overlap(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_panel(name, panel, ds_uids, errors):
    title = panel.get("title") if isinstance(panel, dict) else None
    where = f"{name}: panel {panel.get('id') if isinstance(panel, dict) else '?'} {title!r}"
    if not isinstance(panel, dict):
        errors.append(f"{name}: a panel is not an object")
        return
    ptype = panel.get("type")
    if not ptype:
        errors.append(f"{where}: no type")
    elif ptype not in PANEL_TYPES:
        errors.append(f"{where}: panel type {ptype!r} is not one of {sorted(PANEL_TYPES)}")
    if not title:
        errors.append(f"{where}: no title")
    _check_grid(where, panel.get("gridPos"), errors)
    ds = panel.get("datasource")
    if not isinstance(ds, dict) or ds.get("uid") not in ds_uids or ds.get("type") != "prometheus":
        errors.append(f"{where}: datasource {ds!r} is not the provisioned Prometheus "
                      f"datasource (uid {sorted(ds_uids)})")
    if ptype == "row":
        if panel.get("targets"):
            errors.append(f"{where}: a row has targets")
        if panel.get("panels") and not panel.get("collapsed"):
            errors.append(f"{where}: an expanded row must not hold panels "
                          f"(Grafana keeps them at the top level)")
        return
    if "panels" in panel and panel["panels"]:
        errors.append(f"{where}: only rows may hold panels")
    unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
    if not unit:
        errors.append(f"{where}: fieldConfig.defaults.unit not set")
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        errors.append(f"{where}: no targets")
        return
    ref_ids = set()
    for i, target in enumerate(targets):
        twhere = f"{where} target {i}"
        if not isinstance(target, dict):
            errors.append(f"{twhere}: not an object")
            continue
        ref = target.get("refId")
        if not ref:
            errors.append(f"{twhere}: no refId")
        elif ref in ref_ids:
            errors.append(f"{twhere}: refId {ref!r} used twice in the panel")
        ref_ids.add(ref)
        expr = target.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            errors.append(f"{twhere} ({ref}): empty expr")
            continue
        if "legendFormat" not in target:
            errors.append(f"{twhere} ({ref}): no legendFormat")
        tds = target.get("datasource")
        if tds is not None and (not isinstance(tds, dict) or tds.get("uid") not in ds_uids):
            errors.append(f"{twhere} ({ref}): datasource {tds!r} is not the provisioned one")
        if ("histogram_quantile" in expr and target.get("range") and not target.get("instant")
                and any(f"{h}_bucket" in expr for h in EXEMPLAR_HISTOGRAMS)
                and target.get("exemplar") is not True):
            errors.append(f"{twhere} ({ref}): a latency graph of a histogram with exemplars "
                          f"without \"exemplar\": true")
        for m in VARIABLE_RE.finditer(expr):
            if m.group(0) != RATE_INTERVAL:
                errors.append(f"{twhere} ({ref}): template variable {m.group(0)} in expr "
                              f"(only $__rate_interval may be used): {expr}")


def check_dashboard(path, ds_uids, errors, uids_seen):
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        errors.append(f"{path.name}: not valid JSON: {e}")
        return
    name = path.name
    if not isinstance(dashboard, dict):
        errors.append(f"{name}: not a JSON object")
        return
    uid = dashboard.get("uid")
    if not uid or not isinstance(uid, str):
        errors.append(f"{name}: no uid")
    elif len(uid) > 40:
        errors.append(f"{name}: uid {uid!r} is longer than Grafana's 40 characters")
    elif uid in uids_seen:
        errors.append(f"{name}: uid {uid!r} also used by {uids_seen[uid]}")
    else:
        uids_seen[uid] = name
    if not dashboard.get("title"):
        errors.append(f"{name}: no title")
    if not isinstance(dashboard.get("schemaVersion"), int):
        errors.append(f"{name}: no schemaVersion")
    if "id" not in dashboard or dashboard["id"] is not None:
        errors.append(f"{name}: id must be null for provisioning (is {dashboard.get('id', 'missing')!r})")
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        errors.append(f"{name}: no panels list")
        return
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if isinstance(var, dict) and var.get("datasource") not in (None, {}) \
                and isinstance(var.get("datasource"), dict) \
                and var["datasource"].get("uid") not in ds_uids:
            errors.append(f"{name}: template variable {var.get('name')!r} uses another datasource")

    ids = {}
    for panel in iter_panels(dashboard):
        check_panel(name, panel, ds_uids, errors)
        if not isinstance(panel, dict):
            continue
        pid = panel.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            errors.append(f"{name}: panel {panel.get('title')!r} has no integer id")
        elif pid in ids:
            errors.append(f"{name}: panel id {pid} used by {ids[pid]!r} and {panel.get('title')!r}")
        else:
            ids[pid] = panel.get("title")

    # Top-level panels must not overlap (panels of collapsed rows are laid out
    # when the row is expanded, so they are left out).
    placed = []
    for panel in panels:
        if not isinstance(panel, dict):
            continue
        pos = panel.get("gridPos")
        if not _check_grid("", pos, []):
            continue
        for other_title, other in placed:
            if _overlap(pos, other):
                errors.append(f"{name}: panels {other_title!r} and {panel.get('title')!r} overlap")
        placed.append((panel.get("title"), pos))


def validate(root=DEFAULT_MONITORING):
    errors = []
    ds_uids = check_datasources(root, errors)
    check_dashboard_providers(root, errors)
    files = dashboard_files(root)
    if not files:
        errors.append(f"{dashboards_dir(root)}: no *.json dashboards")
    uids_seen = {}
    for path in files:
        check_dashboard(path, ds_uids, errors, uids_seen)
    return errors


# --------------------------------------------------------------------------- promtool

def promtool_errors(exprs, promtool=None):
    """Checks each expr with `promtool check rules` (promtool 2.42 has no
    command to parse a bare expression): all of them as recording rules in
    one file, and one by one when that fails, to name the broken ones.
    Returns [] without promtool."""
    promtool = promtool or shutil.which("promtool")
    if not promtool:
        return []

    def check(items):
        rules = {"groups": [{"name": "dashboard-exprs", "rules": [
            {"record": f"check:{n}", "expr": expr} for n, (_, _, _, expr) in items]}]}
        fd, path = tempfile.mkstemp(prefix="bookstore-dashboard-exprs-", suffix=".yml")
        try:
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump(rules, f, sort_keys=False)
            proc = subprocess.run([promtool, "check", "rules", path],
                                  capture_output=True, text=True, timeout=120)
            return proc.returncode, (proc.stdout + proc.stderr).strip()
        finally:
            os.unlink(path)

    numbered = list(enumerate(exprs))
    if not numbered:
        return []
    rc, _ = check([(n, e) for n, e in numbered])
    if rc == 0:
        return []
    errors = []
    for n, item in numbered:
        rc, output = check([(n, item)])
        if rc != 0:
            dash, title, ref, expr = item
            detail = "; ".join(line.strip() for line in output.splitlines()
                               if line.strip() and not line.startswith("Checking")
                               and line.strip() != "FAILED:")
            errors.append(f"{dash}: panel {title!r} {ref}: invalid PromQL: {expr}\n    {detail}")
    if not errors:
        errors.append("promtool check rules failed on the exprs together but on none alone")
    return errors


# --------------------------------------------------------------------------- main

def main(argv):
    root = Path(argv[1]) if len(argv) > 1 else DEFAULT_MONITORING
    if not root.is_dir():
        print(f"{root}: not a directory", file=sys.stderr)
        return 2
    errors = validate(root)
    exprs = dashboard_exprs(root)
    promtool = shutil.which("promtool")
    if promtool:
        errors += promtool_errors(exprs, promtool)
    files = dashboard_files(root)
    panels = 0
    for path in files:
        try:
            panels += sum(1 for _ in iter_panels(json.loads(path.read_text())))
        except (OSError, ValueError):
            pass
    if errors:
        for e in errors:
            print(f"ERROR: {e}", file=sys.stderr)
        print(f"{len(errors)} error(s) in {dashboards_dir(root)}", file=sys.stderr)
        return 1
    print(f"OK: {len(files)} dashboard(s), {panels} panels, {len(exprs)} exprs"
          f"{' (promtool check rules passed)' if promtool else ' (promtool not found: PromQL not checked)'}"
          f", provisioning valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
