"""Tests of verify.py against exports built here, from the spec in canonical-form.md.

Run from the repository root:

    python3 -m unittest docs/audit/test_verify.py -v

The canonical form, event hash and Merkle root are written again below, on
purpose without json.dumps(sort_keys=...) and without importing them from
verify.py, so that a mistake in one is not silently shared by the other.
verify.py itself is run as a program (exit code and output), exactly as an
inspector would run it.
"""
import copy
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY = os.path.join(HERE, "verify.py")

# verify.py is imported by path (docs/audit is not a package) only to compare
# its canonical JSON with the one below.
_spec = importlib.util.spec_from_file_location("kehoach_audit_verify", VERIFY)
verify = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify)


# --- The rules, written independently from the spec ---------------------------

ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def canon(v):
    """Canonical JSON by hand: sorted keys (UTF-8 bytes), no spaces, raw UTF-8."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in v) + '"'
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(canon(k) + ":" + canon(v[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {v!r}")


def h_event(e):
    form = ["kehoach-event-v1", e["prev_hash"], e["aggregate_type"], e["aggregate_id"], e["sequence"],
            e["event_type"], e["event_version"], e["payload"], e["metadata"]]
    return hashlib.sha256(canon(form).encode("utf-8")).hexdigest()


def root_of(heads):
    """heads: [(aggregate_type, aggregate_id, sequence, hash)] in any order."""
    heads = sorted(heads, key=lambda x: (x[0].encode("utf-8"), x[1].encode("utf-8")))
    nodes = [hashlib.sha256(canon(["kehoach-head-v1", *h]).encode("utf-8")).digest() for h in heads]
    if not nodes:
        return hashlib.sha256(b"").hexdigest()
    while len(nodes) > 1:
        nxt = []
        for j in range(0, len(nodes), 2):
            nxt.append(hashlib.sha256(nodes[j] + nodes[j + 1]).digest() if j + 1 < len(nodes) else nodes[j])
        nodes = nxt
    return nodes[0].hex()


def seal(events, recompute_checkpoints=True):
    """Fill in prev_hash and hash of every event (and, unless told not to, the
    root/events/aggregates of every checkpoint), in place, in file order."""
    last_hash = {}
    for i, e in enumerate(events):
        if recompute_checkpoints and e["aggregate_type"] == "Checkpoint":
            body = e["payload"]["CheckpointRecorded"]
            covered = [x for x in events[:i] if x["aggregate_type"] != "Checkpoint" and x["cursor"] <= body["up_to"]]
            heads = {}
            for x in covered:  # later events of a chain replace earlier ones
                heads[x["aggregate_type"], x["aggregate_id"]] = (x["sequence"], x["hash"])
            body.update(events=len(covered), aggregates=len(heads),
                        root=root_of([(*k, *v) for k, v in heads.items()]))
        key = (e["aggregate_type"], e["aggregate_id"])
        e["prev_hash"] = last_hash.get(key, "")
        e["hash"] = h_event(e)
        last_hash[key] = e["hash"]
    return events


# --- A small export ---------------------------------------------------------------

PLAN = ("Plan", "duc-pho-de-an-13")
T1 = ("Task", "duc-pho-de-an-13/II.1.1")
T2 = ("Task", "duc-pho-de-an-13/II.1.2")
T3 = ("Task", "duc-pho-de-an-13/III.2")
UNIT_Z, UNIT_D = ("Unit", "Z"), ("Unit", "Đoàn thanh niên")  # "Z" < "Đ" in UTF-8 bytes
STAMP = {"at": "2025-03-04T08:30:00Z", "by": {"agency": "UBND-DP", "person": "Nguyễn Thị Hà"}}
META = {"agency": "UBND-DP", "person": "Nguyễn Thị Hà", "at": "2025-03-04T08:30:00+00:00"}

SCRIPT = [
    (PLAN, "PlanImported", {"title": "Đề án 13 — Đức Phổ"}),                     # 0
    (T1, "TaskRegistered", {"title": "Tuyên truyền \"Dân vận khéo\"\n15 xã"}),   # 1
    (T2, "TaskRegistered", {"title": "Rà soát hồ sơ", "weight": 1.0}),          # 2  cursor [7000, 4]
    (T1, "ProgressReported", {"kpi": "xa", "value": 12.5}),                      # 3  cursor [7001, 3]
    (UNIT_Z, "UnitAdded", {}),                                                   # 4
    ("checkpoint", 2),    # 5: up_to = cursor of line 3 -> covers 0..3 (4 events, 3 chains)
    (UNIT_D, "UnitAdded", {"note": "tab\there, nul\u0000 too"}),                 # 6
    (T2, "ProgressReported", {"kpi": "ho-so", "value": 3}),                      # 7
    (T1, "TaskWithdrawn", {"reason": "gộp vào II.1.2"}),                         # 8
    (T3, "TaskRegistered", {"title": "Báo cáo 😀"}),                              # 9
    ("checkpoint", 1),    # 10: up_to = cursor of line 9 -> covers 9 events, 6 chains
    (T1, "TaskReinstated", {}),                                                  # 11
    (T2, "ProgressReported", {"kpi": "ho-so", "value": 4}),                      # 12
    (T3, "ProgressReported", {"kpi": "bc", "value": 0.25}),                      # 13
    (T3, "ProgressReported", {"kpi": "bc", "value": 0.5}),                       # 14
    (T3, "ProgressReported", {"kpi": "bc", "value": 1}),                         # 15
]


def cursors(n):
    """[tx, position] in feed order; at each new tx the position goes DOWN by one
    (a number taken early, committed late), so only a lexicographic compare works."""
    pos = list(range(1, n + 1))
    for j in range(3, n, 3):
        pos[j - 1], pos[j] = pos[j], pos[j - 1]
    return [[7000 + i // 3, pos[i]] for i in range(n)]


def build():
    events, seqs = [], {}
    for (item, *rest), cursor in zip(SCRIPT, cursors(len(SCRIPT))):
        if item == "checkpoint":
            key, etype = ("Checkpoint", "audit"), "CheckpointRecorded"
            body = {"root": None, "events": None, "aggregates": None,
                    "up_to": events[-rest[0]]["cursor"], "stamp": STAMP}
            payload, metadata = {etype: body}, {"system": "kehoach-audit", "at": STAMP["at"]}
        else:
            key, (etype, body) = item, rest
            payload, metadata = {etype: {**body, "stamp": STAMP}}, dict(META)
        seqs[key] = seqs.get(key, 0) + 1
        events.append({"kind": "event", "cursor": cursor, "aggregate_type": key[0], "aggregate_id": key[1],
                       "sequence": seqs[key], "event_type": etype, "event_version": "1",
                       "payload": payload, "metadata": metadata})
    return seal(events)


def export_text(events, header_events=None):
    header = {"kind": "header", "format": "kehoach-export-v1", "exported_at": "2025-03-05T01:00:00+00:00",
              "events": len(events) if header_events is None else header_events}
    # Written with spaces and in insertion order: the verifier must not care.
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [header, *events])


class VerifyTest(unittest.TestCase):
    def setUp(self):
        self.events = build()
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def run_text(self, text, *args):
        path = os.path.join(self.dir.name, "export.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        p = subprocess.run([sys.executable, VERIFY, path, *args], capture_output=True, text=True)
        out = p.stdout.strip()
        self.assertEqual(len(out.splitlines()), 1, f"one line of output expected: {out!r} {p.stderr!r}")
        return p.returncode, out

    def run_events(self, events, *args, header_events=None):
        return self.run_text(export_text(events, header_events), *args)

    def assertFails(self, result, start):
        code, out = result
        self.assertEqual(code, 1, out)
        self.assertTrue(out.startswith("FAIL: " + start), out)
        return out

    def checkpoint(self, number):
        return [e for e in self.events if e["aggregate_type"] == "Checkpoint"][number - 1]

    def root(self, number):
        return self.checkpoint(number)["payload"]["CheckpointRecorded"]["root"]

    # --- a clean export -------------------------------------------------------------

    def test_clean_export_passes(self):
        self.assertEqual(self.run_events(self.events), (0, "OK: 16 events in 7 chains, 2 checkpoints"))

    def test_checkpoints_cover_by_lexicographic_cursor(self):
        # Line 2 has cursor [7000, 4], checkpoint 1 has up_to [7001, 3]: covered.
        body = self.checkpoint(1)["payload"]["CheckpointRecorded"]
        self.assertEqual((body["up_to"], body["events"], body["aggregates"]), ([7001, 3], 4, 3))
        body = self.checkpoint(2)["payload"]["CheckpointRecorded"]
        self.assertEqual((body["events"], body["aggregates"]), (9, 6))

    def test_matching_root_passes_in_any_case_and_among_others(self):
        other = "0" * 64
        self.assertEqual(self.run_events(self.events, "--root", other, self.root(2).upper())[0], 0)
        self.assertEqual(self.run_events(self.events, "--root", other, "--root", self.root(2))[0], 0)

    # --- tampering --------------------------------------------------------------------

    def test_edited_payload(self):
        e = self.events[7]  # Task II.1.2 #2
        stored = e["hash"]
        e["payload"]["ProgressReported"]["value"] = 30
        out = self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/II.1.2 #2: hash expected ")
        self.assertIn(f"hash expected {h_event(e)}, found {stored}", out)

    def test_edited_metadata(self):
        self.events[1]["metadata"]["person"] = "Trần Văn B"
        self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/II.1.1 #1: hash expected ")

    def test_deleted_middle_event(self):
        del self.events[14]  # Task III.2 #3, after the last checkpoint; header fixed too
        out = self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/III.2 #4: sequence expected 3, found 4")
        self.assertIn("missing", out)

    def test_deleted_last_event_of_a_chain_is_caught_by_the_next_checkpoint(self):
        del self.events[4]  # Unit Z #1: nothing after it in its chain
        self.assertFails(self.run_events(self.events), "checkpoint #2 (Checkpoint audit #2): events expected 8, found 9")

    def test_deleted_event_and_renumbered_successor(self):
        deleted = self.events.pop(14)  # Task III.2 #3 goes; #4 becomes #3, with a hash of its own
        e = self.events[14]
        e["sequence"] = 3
        e["hash"] = h_event(e)  # still linked to the deleted event
        self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/III.2 #3: prev_hash expected "
                         f"{self.events[13]['hash']}, found {deleted['hash']}")

    def test_swapped_sequence_numbers(self):
        a, b = self.events[13], self.events[14]  # Task III.2 #2 and #3
        a["sequence"], b["sequence"] = b["sequence"], a["sequence"]
        self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/III.2 #3: sequence expected 2, found 3")

    def test_swapped_lines(self):
        self.events[13], self.events[14] = self.events[14], self.events[13]  # Task III.2 #2 and #3
        self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/III.2 #3: sequence expected 2, found 3")

    def test_lines_out_of_feed_order(self):
        self.events[11], self.events[12] = self.events[12], self.events[11]  # two chains, so no sequence gap
        self.assertFails(self.run_events(self.events),
                         "Task duc-pho-de-an-13/II.1.1 #4: cursor expected after [7004, 12], found [7003, 13]")

    def test_swapped_lines_with_their_cursors(self):
        a, b = self.events[13], self.events[14]
        a["cursor"], b["cursor"] = b["cursor"], a["cursor"]
        self.events[13], self.events[14] = b, a
        self.assertFails(self.run_events(self.events), "Task duc-pho-de-an-13/III.2 #3: sequence expected 2, found 3")

    def test_chain_rewritten_consistently_is_caught_by_a_checkpoint(self):
        self.events[3]["payload"]["ProgressReported"]["value"] = 95.0  # Task II.1.1 #2
        seal(self.events, recompute_checkpoints=False)  # every hash redone, checkpoints left alone
        expected = root_of([(*PLAN, 1, self.events[0]["hash"]), (*T1, 2, self.events[3]["hash"]),
                            (*T2, 1, self.events[2]["hash"])])
        self.assertFails(self.run_events(self.events),
                         f"checkpoint #1 (Checkpoint audit #1): root expected {expected}, found {self.root(1)}")

    def test_everything_rewritten_is_caught_only_by_a_root_kept_outside(self):
        sent_by_email = self.root(2)
        self.events[3]["payload"]["ProgressReported"]["value"] = 95.0
        seal(self.events)  # checkpoints recomputed too: internally consistent
        self.assertEqual(self.run_events(self.events)[0], 0)
        self.assertFails(self.run_events(self.events, "--root", sent_by_email),
                         f"checkpoint #2 (the last): root expected one of {sent_by_email}, found {self.root(2)}")

    def test_root_of_an_earlier_checkpoint_is_not_enough(self):
        self.assertFails(self.run_events(self.events, "--root", self.root(1)), "checkpoint #2 (the last): root expected")

    def test_root_given_but_no_checkpoint(self):
        events = seal([e for e in self.events if e["aggregate_type"] != "Checkpoint"])
        self.assertFails(self.run_events(events, "--root", self.root(2)), "--root: expected a checkpoint")

    def test_checkpoint_covering_the_future(self):
        self.checkpoint(1)["payload"]["CheckpointRecorded"]["up_to"] = [9999, 1]
        seal(self.events)
        self.assertFails(self.run_events(self.events), "checkpoint #1 (Checkpoint audit #1): up_to expected before")

    def test_header_count(self):
        self.assertFails(self.run_events(self.events[:-1], header_events=16), "header: expected 16 event lines, found 15")

    # --- malformed files -------------------------------------------------------------

    def assertMalformed(self, result, line):
        code, out = result
        self.assertEqual(code, 2, out)
        self.assertTrue(out.startswith(f"MALFORMED: line {line}:"), out)

    def test_malformed(self):
        lines = export_text(self.events).splitlines(keepends=True)
        self.assertMalformed(self.run_text(""), 1)
        self.assertMalformed(self.run_text("".join(lines[1:])), 1)  # no header
        self.assertMalformed(self.run_text("".join(lines[:3] + ["{not json\n"] + lines[4:])), 4)
        self.assertMalformed(self.run_text("".join(lines[:3] + ["\n"] + lines[4:])), 4)
        dup = lines[3].replace('"kind": "event"', '"kind": "event", "kind": "event"', 1)  # duplicate key
        self.assertMalformed(self.run_text("".join(lines[:3] + [dup] + lines[4:])), 4)
        bad = copy.deepcopy(self.events)
        bad[4]["sequence"] = "1"
        self.assertMalformed(self.run_events(bad), 6)
        bad[4]["sequence"] = True  # equal to 1 in Python, but not an integer
        self.assertMalformed(self.run_events(bad), 6)
        bad = copy.deepcopy(self.events)
        bad[4]["hash"] = None
        self.assertMalformed(self.run_events(bad), 6)
        bad = copy.deepcopy(self.events)
        bad[5]["payload"] = {"CheckpointRecorded": {"root": "x"}}
        seal(bad, recompute_checkpoints=False)  # hashes right, so the shape is the first problem
        self.assertMalformed(self.run_events(bad), 7)
        nan = lines[3].replace('"weight": 1.0', '"weight": NaN')  # not JSON, though Python reads it
        self.assertIn("NaN", nan)
        self.assertMalformed(self.run_text("".join(lines[:3] + [nan] + lines[4:])), 4)
        text = "".join(lines[:2]) + lines[3].replace('"Rà soát', '"\\ud800 Rà soát')  # lone surrogate
        self.assertIn("\\ud800", text)
        self.assertMalformed(self.run_text(text), 3)

    # --- the rules themselves ----------------------------------------------------------

    def test_canonical_json_agrees_with_verify(self):
        samples = [
            {"b": 1, "a": {"z": [1.5, "Dân vận khéo \"x\"\n"], "ä": None, "B": True}},
            {"\ufffd": 1, "\U0001F600": 2, "z": 3, "Z": 4, "": 5},  # BMP vs supplementary keys
            ["\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\u2028\\\"/", "😀"],
            [1.0, 0.1, -0.0, 12.5, 1e15, 1e16, 1e-4, 1e-10, 5e-324, 0, -1, 2 ** 63 - 1, True, False, None],
            *[[e["payload"], e["metadata"]] for e in self.events],
        ]
        for v in samples:
            self.assertEqual(canon(v), verify.cj(v))
        self.assertEqual(canon({"b": 1, "a": {"z": [1.5, "x\n"], "ä": None, "B": True}}),
                         '{"a":{"B":true,"z":[1.5,"x\\n"],"ä":null},"b":1}')
        self.assertEqual(canon(["\x00\x1f"]), '["\\u0000\\u001f"]')

    def test_worked_example_of_the_document(self):
        e = {"aggregate_type": "Task", "aggregate_id": "duc-pho-de-an-13/II.1.2", "sequence": 1,
             "event_type": "TaskRegistered", "event_version": "1", "prev_hash": "",
             "payload": {"TaskRegistered": {
                 "plan": "duc-pho-de-an-13", "task": "II.1.2",
                 "definition": {"title": "Tuyên truyền \"Dân vận khéo\"\ntại 15 xã, phường", "weight": 1.0},
                 "stamp": {"by": {"person": "Nguyễn Thị Hà", "agency": "UBND-DP"}, "at": "2025-03-04T08:30:00Z"}}},
             "metadata": {"person": "Nguyễn Thị Hà", "agency": "UBND-DP", "at": "2025-03-04T08:30:00+00:00"}}
        h = "c0c1c3152dd624181cf64b975b930d3147278a92ef9a2a3a8717130600609f07"
        self.assertEqual(h_event(e), h)
        self.assertEqual(verify.event_hash(e), h)
        heads = [(*T2, 1, h), (*PLAN, 4, "a" * 64), (*T1, 3, "b" * 64)]
        root = "9ad51b14b605246dadef2c45ad0e47576356a0747df2e9c80d9b259d36c2936b"
        self.assertEqual(root_of(heads), root)
        self.assertEqual(verify.merkle_root({(t, i): (s, x) for t, i, s, x in heads}), root)
        # Five heads, non-ASCII ordering; this root was also computed by src/audit/merkle.rs.
        heads += [("Đơn vị", "x", 1, "c" * 64), ("Z", "y", 2, "d" * 64)]
        self.assertEqual(root_of(heads), "e40e8dad51363ece1394c56963bd9f4f2c12282c76582e2c2ef55c1f0366df57")
        empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        self.assertEqual((root_of([]), verify.merkle_root({})), (empty, empty))


if __name__ == "__main__":
    unittest.main()
