"""Template lineage in what logml writes: a template merged from others lists their ids as
``template_parents`` (per-line documents, anomaly documents, ``logml parse`` JSONL rows,
mapped as a keyword); to the detector it is not a new template, the templates merged
into it do not drop to zero, and it continues their series (their baselines summed)."""
import subprocess
import sys

import numpy as np
import orjson

from logml import snapshot
from logml.config import Config
from logml.decode import Decoder
from logml.detect import Detector
from logml.docs import LogDocs, anomaly_doc, log_doc
from logml.pipeline import Pipeline
from logml.setup import mappings
from logml.sinks.jsonl import JsonlSink
from logml.template import TemplateEngine

NOW = 1_764_000_000.0
USERS = ["alice", "bob", "carol", "dave", "erin"]
# alice's template holds its wording for three lines (then another user is another event);
# the fourth user makes the user a variable: bob, carol and alice merge into one template
SESSIONS = [f"session opened for user {u} by sshd" for u in ["alice"] * 3 + USERS[1:]]


def _merged_engine():
    """An engine whose 'session opened' siblings merged at the fourth user: (engine, merged
    template index, ids of its parents)."""
    engine = TemplateEngine()
    events, _ = Decoder().decode_block("\n".join(SESSIONS[:6]).encode(), 0, "f", now=NOW)
    engine.template_events(events)
    merged = engine.template_index[engine.successor(engine.template_id(0))]
    parents = engine.lineage(merged)["parents"]
    assert len(parents) == 3 and engine.template_text(merged) == \
        "session opened for user <*> by sshd"
    return engine, merged, parents


def test_log_documents_carry_the_parents_of_merged_templates_only():
    engine, merged, parents = _merged_engine()
    lines = b"".join(f"session opened for user {u} by sshd\n".encode() for u in USERS) + \
        b"disk /dev/sda1 full\n"
    events, _ = Decoder().decode_block(lines, 10, "f", now=NOW)
    events.ts[np.isnan(events.ts)] = NOW
    idx, _ = engine.template_events(events)
    _, ids, docs = LogDocs().build(events, idx, engine, "f")
    got = [orjson.loads(d) for d in docs]
    want = [log_doc(events, i, engine.template_id(t), engine.template_text(t),
                    engine.params(events.text(i), t), "f", engine.lineage(t)["parents"])[1]
            for i, t in enumerate(idx.tolist())]
    assert got == want
    assert [d["logml"].get("template_parents") for d in got] == [parents] * 5 + [None]
    assert [d["logml"]["params"] for d in got[:5]] == [[u] for u in USERS]


def test_anomaly_documents_carry_parents_when_there_are_some():
    class A:  # the fields anomaly_doc reads
        start, end, type, actual, expected, lower, upper = NOW, NOW + 60, "spike", 9, 2, 0, 5
        zscore, score, probability, severity, samples, incident_id = 4.0, 80.0, 1e-5, \
            "critical", ["x"], "20251124T1600Z"
    _, doc = anomaly_doc(A, "api", "a1", "t <*>", ["p1", "p2"])
    assert doc["logml"]["template_parents"] == ["p1", "p2"]
    for parents in (None, []):
        _, doc = anomaly_doc(A, "api", "a1", "t <*>", parents)
        assert "template_parents" not in doc["logml"]


def test_index_templates_map_parents_as_keywords():
    for kind in ("logs", "anomalies"):
        assert mappings(kind)["properties"]["logml"]["properties"]["template_parents"][
            "type"] == "keyword"


def test_parse_jsonl_rows_list_the_parents():
    lines = "\n".join(SESSIONS + ["disk /dev/sda1 full"]).encode() + b"\n"
    p = subprocess.run([sys.executable, "-m", "logml.cli", "parse", "--format", "jsonl", "-"],
                       input=lines, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = [orjson.loads(x) for x in p.stdout.splitlines()]
    # alice (3 lines), bob, carol: three templates; dave merges them; erin gets the merge
    early = [r["template_id"] for r in rows[2:5]]
    assert len(set(early)) == 3 and all("template_parents" not in r for r in rows[:5])
    assert rows[5]["template_id"] == rows[6]["template_id"] not in early
    assert sorted(rows[5]["template_parents"]) == sorted(early)
    assert rows[6]["template_parents"] == rows[5]["template_parents"]
    assert "template_parents" not in rows[7]


def _last_anomalies(derived=None, retired=None):
    """Template 0 steady, 1 steady until window 40, 2 born at 40 (as if 1 merged into it)."""
    from logml.window import WindowFrame
    det = Detector(Config().score, 60.0)
    out = []
    for k in range(41):
        counts = np.array([50, 20, 0] if k < 40 else [50, 0, 20])
        f = WindowFrame(k * 60.0, (k + 1) * 60.0, counts, np.zeros(3, np.int64),
                        np.array([counts.sum()]), np.zeros(1, np.int64), {})
        out.append(det.score(f, np.zeros(3, np.int32), 1, derived, retired))
    return sorted((a.type, a.template) for a in out[-1].anomalies)


def test_a_derived_template_is_not_new_and_a_retired_one_does_not_drop():
    assert _last_anomalies() == [("drop", 1), ("new_template", 2)]
    no = np.zeros(3, dtype=bool)
    assert _last_anomalies(no, no) == [("drop", 1), ("new_template", 2)]
    assert _last_anomalies(np.array([False, False, True])) == [("drop", 1)]
    assert _last_anomalies(retired=np.array([False, True, False])) == [("new_template", 2)]
    assert _last_anomalies(np.array([False, False, True]), np.array([False, True, False])) == []


def _event(t, message):
    return orjson.dumps({"@timestamp": t, "message": message, "service": {"name": "api"}})


def test_pipeline_merge_after_warm_up_raises_no_new_template(tmp_path):
    """Siblings seen during warm-up merge once the service has a baseline: the merged
    template's lines are not new (they were there all along under the parents' ids), and
    the parents, whose lines now count under the merged template, did not go silent."""
    config = Config()
    start = 1_764_000_000
    lines = []
    for w in range(45):
        for k in range(20):
            lines.append(_event(start + w * 60 + k * 3, f"request {k} served in {k + 3} ms"))
        # alice alone first (her template holds its wording), then bob and carol as their
        # own events; dave (the fourth value) arrives after the warm-up: the merge
        users = ["alice"] * 3 if w == 0 else USERS[:3] * 10 if w < 40 else USERS * 10
        for k, u in enumerate(users):
            lines.append(_event(start + w * 60 + 1 + k * 0.5,
                                f"session opened for user {u} by sshd"))
    data = b"\n".join(lines) + b"\n"
    p = Pipeline(config, JsonlSink(tmp_path, write_logs=True))
    p.process_block(data, 0, "input", len(data))
    p.finish()
    p.sink.close()
    engine = p.engine
    merged = max(range(len(engine.templates)), key=lambda t: len(engine.lineage(t)["parents"]))
    assert len(engine.lineage(merged)["parents"]) == 3
    assert p.template_derived.tolist() == [bool(t.parents) for t in engine.templates]
    anomalies = [orjson.loads(x) for x in (tmp_path / "anomalies.jsonl").read_bytes()
                 .splitlines()] if (tmp_path / "anomalies.jsonl").exists() else []
    # neither the merged template is new, nor did its parents stop (their lines go on)
    assert not [a for a in anomalies if a["logml"]["template_id"] is not None]
    retired = p.template_merged_into >= 0
    assert retired.tolist() == [engine.successor(t.template_id) != t.template_id
                                for t in engine.templates]
    assert sum(retired) == 3
    logs = [orjson.loads(x) for x in (tmp_path / "logs.jsonl").read_bytes().splitlines()]
    tagged = [d for d in logs if "template_parents" in d["logml"]]
    assert tagged and all(d["logml"]["template_id"] == engine.template_id(merged)
                          for d in tagged)
    assert {d["logml"]["params"][0] for d in tagged} == set(USERS)



def _merge_then_spike_lines(start=1_764_000_000):
    """api: 20 steady lines a window; alice, bob and carol 10 lines each (three templates)
    until window 40, where dave's line merges them; from then on the merged template gets
    the same 30 lines a window, except window 42: five times as many."""
    lines = []
    for w in range(46):
        for k in range(20):
            lines.append(_event(start + w * 60 + k * 3, f"request {k} served in {k + 3} ms"))
        users = (["alice"] * 30 if w == 0 else USERS[:3] * 10 if w < 40
                 else USERS * 30 if w == 42 else USERS * 6)
        for k, u in enumerate(users):
            lines.append(_event(start + w * 60 + 1 + k * 0.3,
                                f"session opened for user {u} by sshd"))
    return lines


def _run_lines(tmp_path, lines, restore_at=()):
    """Anomaly documents of a pipeline fed ``lines`` in blocks of 10 (windows close as
    the stream goes on), saved and restored from its state before the lines at
    ``restore_at`` (as a checkpoint and the next owner would)."""
    p, docs = None, []

    def collect():
        f = tmp_path / str(len(docs)) / "anomalies.jsonl"
        p.sink.close()
        docs.append([orjson.loads(x) for x in f.read_bytes().splitlines()] if f.exists()
                    else [])

    for at in range(0, len(lines), 10):
        if p is None or at in restore_at:
            state = p and p.state()
            if p is not None:
                collect()
            p = Pipeline(Config(), JsonlSink(tmp_path / str(len(docs))))
            if state is not None:
                p.restore(snapshot.loads(snapshot.dumps("pipeline", state), "pipeline"))
        data = b"\n".join(lines[at:at + 10]) + b"\n"
        p.process_block(data, at, "input", at + 10)
    p.finish()
    collect()
    return p, [a for part in docs for a in part]


def test_merged_template_spiking_right_after_the_merge_is_a_spike(tmp_path):
    """The merged template continues its parents' series, so a spike in the window after
    the merge is found (it used to be in warm-up), on the merged template; saving and
    restoring the pipeline at the merge changes nothing."""
    lines = _merge_then_spike_lines()
    p, anomalies = _run_lines(tmp_path / "whole", lines)
    engine = p.engine
    merged = max(range(len(engine.templates)), key=lambda t: len(engine.lineage(t)["parents"]))
    assert len(engine.lineage(merged)["parents"]) == 3
    assert p.template_merged_into.tolist() == [
        merged if engine.template_id(t) in engine.lineage(merged)["parents"] else -1
        for t in range(len(engine.templates))]
    got = [(a["logml"]["anomaly"]["type"], a["logml"]["template_id"], a["@timestamp"])
           for a in anomalies]
    assert got == [("spike", engine.template_id(merged), "2025-11-24T16:42:00.000Z")]
    # restored after the block holding dave's first line (the merge; the merged template
    # has lines, its window is still open), and again after the spike's window began
    first = next(i for i, x in enumerate(lines) if b"user dave" in x) // 10 * 10
    _, again = _run_lines(tmp_path / "cut", lines, (first + 10, first + 100))
    assert [(a["logml"]["anomaly"]["type"], a["logml"]["template_id"], a["@timestamp"],
             a["logml"]["anomaly_score"]) for a in again] == \
        [(a["logml"]["anomaly"]["type"], a["logml"]["template_id"], a["@timestamp"],
          a["logml"]["anomaly_score"]) for a in anomalies]


def _cut_run(lines, cuts):
    """The state and the window and anomaly documents of a pipeline fed ``lines`` in
    blocks cut before the indices in ``cuts``."""
    class Keep:
        write_logs = False

        def __init__(self):
            self.docs = {}

        def write(self, kind, docs):
            self.docs.update({(kind, i): orjson.dumps(d, option=orjson.OPT_SORT_KEYS)
                              for i, d in docs})

        def dead_letter(self, errors):
            pass

    p = Pipeline(Config(), Keep())
    for a, b in zip([0, *cuts], [*cuts, len(lines)]):
        data = b"\n".join(lines[a:b]) + b"\n"
        p.process_block(data, a, "input", b)
    p.finish()
    state = p.state()
    cache = state["templates"]["cache"]  # a hash table: where an entry sits is immaterial
    order = np.argsort(cache["keys"])
    cache["keys"], cache["values"] = cache["keys"][order], cache["values"][order]
    return _bytes_of(state), p.sink.docs


def _bytes_of(node):
    """A state tree as comparable data: arrays by dtype, shape and bytes (NaN == NaN)."""
    if isinstance(node, dict):
        return {k: _bytes_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_bytes_of(v) for v in node]
    if isinstance(node, np.ndarray):
        return node.dtype.str, node.shape, node.tobytes()
    return node


def test_a_merge_gives_the_same_results_wherever_batches_are_cut():
    """A window closes at the end of the batch in which its service's clock passed it, so
    a merge later in that batch must not reach back into it: what the detector sees of a
    window is fixed by the lines, never by where the batches were cut (a consumer's
    batches differ from run to run, and after every hand-over)."""
    lines = _merge_then_spike_lines()
    merge = next(i for i, x in enumerate(lines) if b"user dave" in x)
    want = _cut_run(lines, [])
    for cut in range(merge - 30, merge + 2):
        got = _cut_run(lines, [cut])
        assert got[1] == want[1], f"documents differ with a cut before line {cut}"
        assert got[0] == want[0], f"state differs with a cut before line {cut}"
