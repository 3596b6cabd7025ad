"""Score anomalies against labelled incidents (``logml eval ANOMALIES LABELS``).

Anomalies are the documents of ``logml-anomalies-*`` (one JSON object a line); dotted
field names may be nested (``{"logml": {"severity": ...}}``) or flat (``"logml.severity"``),
or a mix. Labels are what ``logml generate`` writes (``labels.json``).

Rules, with W = ``window_seconds`` and D = ``max_delay_windows``:

* an anomaly *matches* an incident when it is on the incident's service and its window
  start lies in ``[incident.start - W, incident.end + D*W]`` (any anomaly type);
* an incident is *detected* when at least one anomaly matches it; its delay is
  ``delay_windows = max(0, ceil((first_window_start - incident.start) / W))``, so the window
  holding the incident's start is delay 0; it is *detected in time* when
  ``delay_windows <= D``. Recall = detected in time / incidents;
* precision = matched anomalies / anomalies. Anomalies are grouped into *logml incidents*
  (by ``logml.incident_id`` when present, else per service by runs of adjacent windows);
  a group is true when any of its anomalies matches; incident precision = true groups /
  groups;
* false alarms are the groups that are not true, counted by their highest severity and
  normalised per service-day: ``count / (len(labels.services) * duration_days)``.
  Unmatched anomalies are also counted one by one (``false_alarm_anomalies``);
* an incident with an ``onset`` (gradual and seasonal ones of ``logml generate --hard``)
  matches anomalies from ``onset - W``; its delay still counts from ``start``;
* a detection whose first matching anomaly belongs to a logml incident that began before
  ``onset - W`` (an alarm already running, which the incident may only have prolonged)
  counts as a detection, but is flagged: ``alarm_began_windows_before`` on the incident
  (how many windows before the onset that alarm began) and
  ``in_time_through_earlier_alarm`` in the totals, so such a credit is visible (a deep
  drop inside a running alarm is still found by its own windows; a seasonal stall at the
  foot of a ramp where a false shortfall was running may not be);
* labels may set ``probation_seconds`` (as NAB's probationary period): anomalies in the
  first that many seconds are not scored at all, and service-days start after it;
* the NAB score (Numenta Anomaly Benchmark, Lavin and Ahmad 2015): every window of a
  service with an anomaly is a detection; the first detection inside an incident's
  window [onset - W, end + D*W] earns A_TP * sigma(y), y = its position from -1 (window
  start) to 0 (window end), sigma(y) = 2 / (1 + e^(5y)) - 1; a detection outside every
  window costs A_FP * sigma(y) with y its distance after the last window's end in window
  lengths (-A_FP when no window precedes it); a missed window costs A_FN. Normalised to
  0 for a detector that never fires and 100 for one that fires at every window's start;
  profiles ``standard`` (A_FP 0.11), ``reward_low_fp`` (0.22) and ``reward_low_fn``
  (A_FP 0.055, A_FN 2).
"""
from __future__ import annotations

import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

__all__ = ["evaluate", "load_anomalies", "format_report", "nab_score", "NAB_PROFILES",
           "LabelsError"]

NAB_PROFILES = {"standard": (1.0, 0.11, 1.0), "reward_low_fp": (1.0, 0.22, 1.0),
                "reward_low_fn": (1.0, 0.055, 2.0)}  # A_TP, A_FP, A_FN

SEVERITIES = ("warning", "critical")
_SEV_RANK = {"info": 0, "low": 0, "warning": 1, "medium": 1, "high": 2, "critical": 2}


_MAX_EPOCH = 253402300800.0  # 10000-01-01: later times cannot be shown (time.gmtime)


class LabelsError(ValueError):
    """Labels that cannot be scored against; the message says what in them is wrong."""


def _get(doc, key: str):
    """``doc[key]`` for a dotted key in flat, nested or mixed form; None when absent."""
    if not isinstance(doc, dict):
        return None
    if key in doc:
        return doc[key]
    parts = key.split(".")
    for i in range(1, len(parts)):
        sub = doc.get(".".join(parts[:i]))
        if isinstance(sub, dict):
            v = _get(sub, ".".join(parts[i:]))
            if v is not None:
                return v
    return None


def _epoch(value) -> float | None:
    """Epoch seconds from epoch seconds/milliseconds (number or numeric text) or ISO 8601."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str):
        s = value.strip()
        try:
            v = float(s)
        except ValueError:
            try:
                dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return dt.timestamp()
    else:
        return None
    if not math.isfinite(v):
        return None
    v = v / 1000.0 if abs(v) > 1e11 else v
    return v if abs(v) < _MAX_EPOCH else None


def _severity(doc) -> str:
    sev = _get(doc, "logml.severity")
    if not isinstance(sev, str):
        sev = _get(doc, "event.severity")
    return sev.lower() if isinstance(sev, str) and sev else "unknown"


def _sev_rank(sev: str) -> int:
    return _SEV_RANK.get(sev, -1)


def _max_sev(sevs) -> str:
    return max(sevs, key=lambda s: (_sev_rank(s), s))


def _sev_counts(items) -> dict[str, int]:
    out = {s: 0 for s in SEVERITIES}
    for s in items:
        out[s] = out.get(s, 0) + 1
    return out


def load_anomalies(path) -> list:
    """Anomaly documents from a JSON-lines file (``-`` for stdin). A JSON array file and
    Elasticsearch hits (``{"_source": {...}}``) are accepted too. Rows that are not objects
    are kept (``evaluate`` counts them as skipped)."""
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        data = Path(path).read_bytes()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            docs = orjson.loads(stripped)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"{path}: not JSON: {e}") from None
    else:
        docs = []
        for no, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{path}:{no}: not JSON: {e}") from None
    if not isinstance(docs, list):
        docs = [docs]
    return [d["_source"] if isinstance(d, dict) and isinstance(d.get("_source"), dict) else d
            for d in docs]


def _time(value, what: str) -> float:
    t = _epoch(value)
    if t is None:
        raise LabelsError(f"{what} {value!r} is not a time (epoch seconds or ISO-8601 UTC)")
    return t


def _span(start, end, what: str) -> tuple[float, float]:
    """(start, end) of labels or an incident: times, end after start."""
    start, end = _time(start, f"{what}start"), _time(end, f"{what}end")
    if end <= start:
        raise LabelsError(f"{what}end {end:g} is not after its start {start:g}")
    return start, end


def _check_labels(labels: dict) -> tuple[float | None, float | None, float, list[dict]]:
    """(start, end, probation seconds, incidents with epoch times) of labels; LabelsError
    names what is wrong."""
    t_start = t_end = None
    if labels.get("start") is not None and labels.get("end") is not None:
        t_start, t_end = _span(labels["start"], labels["end"], "")
    elif labels.get("start") is not None:
        t_start = _time(labels["start"], "start")
    elif labels.get("end") is not None:
        t_end = _time(labels["end"], "end")
    probation = labels.get("probation_seconds") or 0.0
    if isinstance(probation, bool) or not isinstance(probation, (int, float)) \
            or not 0 <= probation < math.inf:
        raise LabelsError(f"probation_seconds {probation!r} is not a number of seconds, 0 or "
                          f"more")
    services = labels.get("services")
    if services is not None and not (isinstance(services, list)
                                     and all(isinstance(x, str) for x in services)):
        raise LabelsError(f"services {services!r} is not a list of service names")
    incidents = []
    for k, inc in enumerate(labels.get("incidents", []), 1):
        if not isinstance(inc, dict):
            raise LabelsError(f"incident {k} is not an object but {inc!r}")
        name = f"incident {inc['id']!r}" if "id" in inc else f"incident {k}"
        missing = [key for key in ("service", "start", "end") if inc.get(key) is None]
        if missing:
            raise LabelsError(f"{name} lacks {', '.join(missing)} (each incident needs "
                              f"service, start and end)")
        start, end = _span(inc["start"], inc["end"], f"{name}: ")
        onset = None if inc.get("onset") is None else _time(inc["onset"], f"{name}: onset")
        incidents.append({**inc, "id": str(inc.get("id", f"inc-{k}")),
                          "start": start, "end": end,
                          "onset": start if onset is None else min(onset, start)})
    return t_start, t_end, float(probation), incidents


def evaluate(anomalies: list[dict], labels: dict, window_seconds: int = 60,
             max_delay_windows: int = 2) -> dict:
    """Recall, delay, precision and false alarms of ``anomalies`` against ``labels``."""
    W = float(window_seconds)
    D = int(max_delay_windows)
    if W <= 0:
        raise ValueError("window_seconds must be > 0")

    t_start, t_end, probation, incidents = _check_labels(labels)
    scored_from = (-math.inf if t_start is None else t_start) + probation
    # anomalies, normalised
    anoms = []
    skipped = 0
    in_probation = 0
    for k, doc in enumerate(anomalies):
        svc = _get(doc, "service.name")
        ts = _epoch(_get(doc, "@timestamp"))
        if svc is None or ts is None or (t_start is not None and ts < t_start):
            skipped += 1  # not an object, no service or time, or before the labels' start
            continue
        if ts < scored_from:
            in_probation += 1
            continue
        iid = _get(doc, "logml.incident_id")
        score = _get(doc, "logml.anomaly_score")
        anoms.append({
            "i": k, "service": str(svc), "ts": ts,
            "type": str(_get(doc, "logml.anomaly.type") or "unknown"),
            "severity": _severity(doc),
            "incident_id": None if iid in (None, "") else str(iid),
            "score": float(score) if isinstance(score, (int, float)) else None,
            "matches": [],
        })

    incidents.sort(key=lambda x: (x["start"], x["id"]))
    by_service: dict[str, list[dict]] = {}
    for a in anoms:
        by_service.setdefault(a["service"], []).append(a)
    for lst in by_service.values():
        lst.sort(key=lambda a: a["ts"])

    # incidents
    rows, first_hits = [], []  # first_hits: (the incident's first match, its onset)
    for inc in incidents:
        lo, hi = inc["onset"] - W, inc["end"] + D * W
        hits = [a for a in by_service.get(inc["service"], []) if lo <= a["ts"] <= hi]
        for a in hits:
            a["matches"].append(inc["id"])
        row = {"id": inc["id"], "service": inc["service"], "type": inc.get("type", "?"),
               "start": inc["start"], "end": inc["end"], "detected": bool(hits),
               "detected_in_time": False, "delay_windows": None, "delay_seconds": None,
               "first_anomaly": None, "matched_types": sorted({a["type"] for a in hits}),
               "matched_anomalies": len(hits),
               "max_severity": _max_sev([a["severity"] for a in hits]) if hits else None,
               "alarm_began_windows_before": 0}
        if hits:
            first = hits[0]["ts"]
            row["first_anomaly"] = first
            row["delay_seconds"] = max(0.0, first - inc["start"])
            row["delay_windows"] = max(0, math.ceil((first - inc["start"]) / W - 1e-9))
            row["detected_in_time"] = row["delay_windows"] <= D
        first_hits.append((hits[0] if hits else None, inc["onset"]))
        rows.append(row)

    n_inc = len(rows)
    n_det = sum(r["detected"] for r in rows)
    n_in_time = sum(r["detected_in_time"] for r in rows)
    by_type: dict[str, dict] = {}
    for r in rows:
        t = by_type.setdefault(r["type"], {"incidents": 0, "detected": 0, "detected_in_time": 0})
        t["incidents"] += 1
        t["detected"] += r["detected"]
        t["detected_in_time"] += r["detected_in_time"]
    for t in by_type.values():
        t["recall"] = t["detected_in_time"] / t["incidents"]
    delays = sorted(r["delay_windows"] for r in rows if r["detected"])

    # logml incidents: groups of anomalies
    groups: dict[tuple, list[dict]] = {}
    for svc in sorted(by_service):
        run_key, last = None, None
        for a in by_service[svc]:
            if a["incident_id"] is not None:
                groups.setdefault(("id", a["incident_id"]), []).append(a)
                continue
            if run_key is None or a["ts"] - last > W + 1e-6:
                run_key = ("run", svc, a["ts"])
            last = a["ts"]
            groups.setdefault(run_key, []).append(a)
    group_rows = []
    for key, members in groups.items():
        members.sort(key=lambda a: a["ts"])
        for a in members:
            a["group_start"] = members[0]["ts"]
        matched = sorted({m for a in members for m in a["matches"]})
        group_rows.append({
            "key": key[1] if key[0] == "id" else None,
            "services": sorted({a["service"] for a in members}),
            "start": members[0]["ts"], "end": members[-1]["ts"] + W,
            "severity": _max_sev([a["severity"] for a in members]),
            "types": sorted({a["type"] for a in members}),
            "anomalies": len(members), "true": bool(matched), "matched_incidents": matched,
        })
    group_rows.sort(key=lambda g: (g["start"], g["services"]))
    for r, (first, onset) in zip(rows, first_hits):  # an earlier alarm running on
        if first is not None and first["group_start"] < onset - W:
            r["alarm_began_windows_before"] = math.ceil((onset - first["group_start"]) / W - 1e-9)
    through_earlier = sum(r["detected_in_time"] and r["alarm_began_windows_before"] > 0
                          for r in rows)
    false_groups = [g for g in group_rows if not g["true"]]
    unmatched = [a for a in anoms if not a["matches"]]

    # normalisation
    services = list(labels.get("services") or [])
    if not services:
        services = sorted({r["service"] for r in rows} | set(by_service))
    n_services = max(1, len(services))
    if t_start is not None and t_end is not None:
        duration = t_end - t_start - probation
    else:
        ts_all = [a["ts"] for a in anoms] + [x for r in rows for x in (r["start"], r["end"])]
        duration = (max(ts_all) - min(ts_all) + W) if ts_all else 0.0
    service_days = n_services * duration / 86400.0
    fa_by_sev = _sev_counts(g["severity"] for g in false_groups)
    per_sd = ({s: c / service_days for s, c in fa_by_sev.items()} if service_days > 0 else
              {s: None for s in fa_by_sev})
    per_sd["total"] = len(false_groups) / service_days if service_days > 0 else None

    n_anom = len(anoms)
    n_matched = n_anom - len(unmatched)
    n_groups = len(group_rows)
    n_true = n_groups - len(false_groups)
    totals = {
        "incidents": n_inc, "detected": n_det, "detected_in_time": n_in_time,
        "late": n_det - n_in_time, "missed": n_inc - n_det,
        "anomalies": n_anom, "matched_anomalies": n_matched,
        "false_alarm_anomalies": len(unmatched), "skipped_anomalies": skipped,
        "probation_anomalies": in_probation,
        "logml_incidents": n_groups, "true_logml_incidents": n_true,
        "false_alarms": len(false_groups),
        "in_time_through_earlier_alarm": through_earlier,
    }
    return {
        "window_seconds": window_seconds, "max_delay_windows": D,
        "services": services, "n_services": len(services), "duration_seconds": duration,
        "service_days": service_days,
        "recall": n_in_time / n_inc if n_inc else None,
        "recall_any_delay": n_det / n_inc if n_inc else None,
        "recall_by_type": dict(sorted(by_type.items())),
        "mean_delay_windows": sum(delays) / len(delays) if delays else None,
        "median_delay_windows": delays[len(delays) // 2] if delays else None,
        "max_delay_windows_seen": delays[-1] if delays else None,
        "precision": n_matched / n_anom if n_anom else None,
        "incident_precision": n_true / n_groups if n_groups else None,
        "incidents": rows,
        "logml_incidents": group_rows,
        "false_alarms": false_groups,
        "false_alarms_by_severity": fa_by_sev,
        "false_alarm_anomalies_by_severity": _sev_counts(a["severity"] for a in unmatched),
        "false_alarms_per_service_day": per_sd,
        "probation_seconds": probation,
        "nab": {name: nab_score(anoms, incidents, W, D, *weights)
                for name, weights in NAB_PROFILES.items()},
        "totals": totals,
    }


def _sigma(y: float) -> float:
    return 2.0 / (1.0 + math.exp(min(5.0 * y, 700.0))) - 1.0


def nab_score(anoms: list[dict], incidents: list[dict], W: float, D: int, a_tp: float,
              a_fp: float, a_fn: float) -> dict:
    """NAB's scaled score of the detections (service, window start) against the incidents'
    windows [onset - W, end + D*W]; see the module doc. 0 = never fires, 100 = perfect."""
    det: dict[str, list[float]] = {}
    for a in anoms:
        det.setdefault(a["service"], []).append(a["ts"])
    wins: dict[str, list[tuple[float, float]]] = {}
    for inc in incidents:
        wins.setdefault(inc["service"], []).append((inc["onset"] - W, inc["end"] + D * W))
    raw, tp, fp = 0.0, 0, 0
    n_windows = sum(len(v) for v in wins.values())
    for svc in set(det) | set(wins):
        ws = sorted(wins.get(svc, []))
        hit = [False] * len(ws)
        for t in sorted(set(det.get(svc, []))):
            inside = [k for k, (a, b) in enumerate(ws) if a <= t <= b]
            if inside:
                k = inside[0]
                if not hit[k]:
                    a, b = ws[k]
                    raw += a_tp * _sigma((t - b) / max(b - a, W))
                    hit[k] = True
                    tp += 1
                continue
            before = [(a, b) for a, b in ws if b < t]
            fp += 1
            if before:
                a, b = before[-1]
                raw += a_fp * _sigma((t - b) / max(b - a, W))
            else:
                raw -= a_fp
        raw -= a_fn * hit.count(False)
    null = -a_fn * n_windows
    perfect = a_tp * _sigma(-1.0) * n_windows
    score = 100.0 * (raw - null) / (perfect - null) if perfect > null else None
    return {"score": score, "raw": raw, "detected_windows": tp, "false_detections": fp,
            "windows": n_windows}


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------

def _t(epoch: float) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(epoch))


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*["-" * w for w in widths]).rstrip()]
    out += [fmt.format(*map(str, r)).rstrip() for r in rows]
    return out


def format_report(result: dict) -> str:
    """A readable text report of an ``evaluate`` result."""
    W, D, tot = result["window_seconds"], result["max_delay_windows"], result["totals"]
    out = [f"logml eval: {tot['incidents']} incidents, {result['n_services']} services, "
           f"{result['duration_seconds'] / 3600:.2f} h ({result['service_days']:.2f} "
           f"service-days), {W} s windows, in time = within {D} windows", ""]
    rows = []
    for r in result["incidents"]:
        if not r["detected"]:
            status = "MISSED"
        elif r["detected_in_time"]:
            status = "yes"
        else:
            status = "late"
        if r.get("alarm_began_windows_before"):
            status += f" (alarm from {r['alarm_began_windows_before']} before onset)"
        rows.append([r["id"], r["service"], r["type"], _t(r["start"]),
                     f"{(r['end'] - r['start']) / 60:.1f}m", status,
                     "-" if r["delay_windows"] is None else r["delay_windows"],
                     ",".join(r["matched_types"]) or "-", r["max_severity"] or "-"])
    if rows:
        out += _table(["incident", "service", "type", "start (UTC)", "length", "detected",
                       "delay", "anomaly types", "severity"], rows)
        out.append("")
    out.append(f"recall (within {D} windows): {tot['detected_in_time']}/{tot['incidents']} = "
               f"{_pct(result['recall'])}   any delay: {tot['detected']}/{tot['incidents']} = "
               f"{_pct(result['recall_any_delay'])}   late {tot['late']}, missed {tot['missed']}")
    if tot.get("in_time_through_earlier_alarm"):
        out.append(f"  of which {tot['in_time_through_earlier_alarm']} first matched by an alarm"
                   " already running before the incident's onset (check that the incident's"
                   " own windows raise it)")
    if result["recall_by_type"]:
        out.append("recall by type: " + ", ".join(
            f"{t} {v['detected_in_time']}/{v['incidents']}"
            for t, v in result["recall_by_type"].items()))
    if result["mean_delay_windows"] is not None:
        out.append(f"delay (windows): mean {result['mean_delay_windows']:.2f}, median "
                   f"{result['median_delay_windows']}, max {result['max_delay_windows_seen']}")
    out.append(f"anomalies: {tot['anomalies']}, matched {tot['matched_anomalies']}, "
               f"precision {_pct(result['precision'])}"
               + (f" ({tot['skipped_anomalies']} skipped: not an object, no service or "
                  f"timestamp, or before the labels' start)"
                  if tot["skipped_anomalies"] else ""))
    nab = result.get("nab")
    if nab:
        out.append("NAB score (0 = never fires, 100 = perfect): " + ", ".join(
            f"{name} {v['score']:.1f}" for name, v in nab.items() if v["score"] is not None)
            + f" ({nab['standard']['false_detections']} detections outside incident windows)")
    if result.get("probation_seconds"):
        out.append(f"probation: the first {result['probation_seconds'] / 3600:g} h are not "
                   f"scored ({tot['probation_anomalies']} anomalies in it)")
    out.append(f"logml incidents: {tot['logml_incidents']}, true "
               f"{tot['true_logml_incidents']}, incident precision "
               f"{_pct(result['incident_precision'])}")
    per_sd = result["false_alarms_per_service_day"]
    parts = []
    for sev, n in result["false_alarms_by_severity"].items():
        rate = per_sd.get(sev)
        parts.append(f"{sev} {n}" + ("" if rate is None else f" ({rate:.2f}/service-day)"))
    out.append(f"false alarms: {tot['false_alarms']} ({tot['false_alarm_anomalies']} anomalies)"
               " - " + ", ".join(parts))
    if result["false_alarms"]:
        out.append("")
        out += _table(["false alarm", "service", "start (UTC)", "anomalies", "severity",
                       "types"],
                      [[g["key"] or f"fa-{i}", ",".join(g["services"]), _t(g["start"]),
                        g["anomalies"], g["severity"], ",".join(g["types"])]
                       for i, g in enumerate(result["false_alarms"], 1)])
    return "\n".join(out) + "\n"
