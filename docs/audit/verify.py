#!/usr/bin/env python3
"""Independent verifier of a kehoach export (see canonical-form.md, same folder).

    python3 verify.py EXPORT.jsonl [--root HEX ...]

Exit 0 and "OK: ..."         every chain, every checkpoint (and --root) checks, and
                             every evidence file an event attaches (and every original
                             document a plan was imported from) is in the export
                             with bytes of the SHA-256 the event records.
Exit 1 and "FAIL: ..."       the first problem found, in file order.
Exit 2 and "MALFORMED: ..."  the file is not a well-formed export (with line number).

Python 3.11 standard library only; nothing here comes from kehoach itself.
"""
import argparse
import base64
import binascii
import hashlib
import json
import sys

FORMAT = "kehoach-export-v1"
EVENT_TAG = "kehoach-event-v1"
HEAD_TAG = "kehoach-head-v1"


class Fail(Exception):
    """The export is well formed but does not check."""


class Malformed(Exception):
    """The file is not a kehoach export."""


def cj(value):
    """Canonical JSON: keys sorted, no whitespace, text as raw UTF-8.
    Python sorts keys by code point, which is the same order as UTF-8 bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text):
    return hashlib.sha256(text.encode("utf-8"))


def event_hash(e):
    """The chained hash of one event; e["prev_hash"] links it to its predecessor."""
    return sha256(cj([EVENT_TAG, e["prev_hash"], e["aggregate_type"], e["aggregate_id"],
                      e["sequence"], e["event_type"], e["event_version"],
                      e["payload"], e["metadata"]])).hexdigest()


def merkle_root(heads):
    """heads: {(aggregate_type, aggregate_id): (sequence, hash)} -> root hex."""
    keys = sorted(heads, key=lambda k: (k[0].encode(), k[1].encode()))
    level = [sha256(cj([HEAD_TAG, t, i, *heads[t, i]])).digest() for t, i in keys]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        parents = [hashlib.sha256(a + b).digest() for a, b in zip(level[0::2], level[1::2])]
        if len(level) % 2:
            parents.append(level[-1])  # the odd one out goes up unchanged
        level = parents
    return level[0].hex()


# --- Reading: strict JSON, one object per line, fields of the right type. ---

def no_duplicate_keys(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key in an object")
    return dict(pairs)


def no_constant(name):
    raise ValueError(f"{name} is not JSON")


def is_int(v):
    return type(v) is int  # True/False are not integers here


def is_str(v):
    return type(v) is str


def is_cursor(v):
    return type(v) is list and len(v) == 2 and all(map(is_int, v))


EVENT_FIELDS = {"cursor": is_cursor, "aggregate_type": is_str, "aggregate_id": is_str,
                "sequence": is_int, "event_type": is_str, "event_version": is_str,
                "payload": lambda v: True, "metadata": lambda v: True,
                "prev_hash": is_str, "hash": is_str}
CHECKPOINT_FIELDS = {"root": is_str, "events": is_int, "aggregates": is_int, "up_to": is_cursor}


def parse(n, raw):
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys,
                         parse_constant=no_constant)
    except (ValueError, RecursionError) as err:  # ValueError includes UnicodeDecodeError
        raise Malformed(f"line {n}: {err}")
    if type(obj) is not dict:
        raise Malformed(f"line {n}: not a JSON object")
    return obj


def require(n, obj, fields, what):
    for name, ok in fields.items():
        if name not in obj or not ok(obj[name]):
            raise Malformed(f"line {n}: {what} field {name!r} is missing or of the wrong type")


# --- Checking. ---

def plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def shown(h):
    return h or '""'  # make the empty prev_hash of a first event visible


def check_checkpoint(n, e, chains, label):
    """Recompute events, aggregates and root from the events read so far."""
    body = e["payload"].get("CheckpointRecorded") if type(e["payload"]) is dict else None
    if type(body) is not dict:
        raise Malformed(f"line {n}: checkpoint payload has no CheckpointRecorded object")
    require(n, body, CHECKPOINT_FIELDS, "checkpoint")
    up_to = tuple(body["up_to"])
    if up_to >= tuple(e["cursor"]):  # else it would cover lines not read yet
        raise Fail(f"{label}: up_to expected before {e['cursor']}, found {body['up_to']}")
    events, heads = 0, {}
    for key, chain in chains.items():
        if key[0] == "Checkpoint":
            continue  # checkpoints cover every other aggregate type
        covered = [(seq, h) for cursor, seq, h in chain if cursor <= up_to]
        if covered:
            events += len(covered)
            heads[key] = covered[-1]  # the aggregate's head as of up_to
    for field, expected in (("events", events), ("aggregates", len(heads)),
                            ("root", merkle_root(heads))):
        if body[field] != expected:
            raise Fail(f"{label}: {field} expected {expected}, found {body[field]}")
    return body["root"]


def verify(lines, roots=()):
    """lines: the file's lines as bytes. Returns the OK summary or raises."""
    header, count, checkpoints, last_root, last_cursor = None, 0, 0, None, None
    chains = {}  # (aggregate_type, aggregate_id) -> [(cursor, sequence, hash), ...]
    attached = {}  # sha256 -> (event name, file name), first event that attaches it
    files = {}     # sha256 -> line number of its file line
    for n, raw in enumerate(lines, 1):
        e = parse(n, raw)
        if n == 1:
            if e.get("kind") != "header" or e.get("format") != FORMAT or not is_int(e.get("events")):
                raise Malformed(f"line 1: not a {FORMAT} header")
            header = e
            continue
        if e.get("kind") == "file":
            check_file(n, e, files)
            continue
        if files:
            raise Malformed(f"line {n}: an event after the file lines")
        if e.get("kind") != "event":
            raise Malformed(f"line {n}: kind is not \"event\" or \"file\"")
        require(n, e, EVENT_FIELDS, "event")
        count += 1
        key, seq, cursor = (e["aggregate_type"], e["aggregate_id"]), e["sequence"], tuple(e["cursor"])
        name = f"{key[0]} {key[1]} #{seq}"

        # 1. Lines are in feed order: cursors strictly ascending, [tx, pos] lexicographic.
        if last_cursor is not None and cursor <= last_cursor:
            raise Fail(f"{name}: cursor expected after {list(last_cursor)}, found {list(cursor)}")
        last_cursor = cursor

        # 2. The aggregate's chain: next sequence, link to the previous hash, own hash.
        chain = chains.setdefault(key, [])
        prev_seq, prev_hash = chain[-1][1:] if chain else (0, "")
        if seq != prev_seq + 1:
            why = "an event is missing" if seq > prev_seq + 1 else "an event is repeated or out of order"
            raise Fail(f"{name}: sequence expected {prev_seq + 1}, found {seq} ({why})")
        if e["prev_hash"] != prev_hash:
            raise Fail(f"{name}: prev_hash expected {shown(prev_hash)}, found {shown(e['prev_hash'])}")
        try:
            recomputed = event_hash(e)
        except UnicodeEncodeError:  # "\ud800" is valid JSON syntax but not Unicode text
            raise Malformed(f"line {n}: a string holds a lone surrogate")
        if e["hash"] != recomputed:
            raise Fail(f"{name}: hash expected {recomputed}, found {e['hash']}")
        chain.append((cursor, seq, recomputed))
        for sha, file_name in attachments(e):
            attached.setdefault(sha, (name, file_name))

        # 3. A checkpoint must match what it covers.
        if key[0] == "Checkpoint" and e["event_type"] == "CheckpointRecorded":
            checkpoints += 1
            last_root = check_checkpoint(n, e, chains, f"checkpoint #{checkpoints} ({name})")

    if header is None:
        raise Malformed("line 1: empty file, no header")
    if header["events"] != count:
        raise Fail(f"header: expected {header['events']} event lines, found {count}")
    for sha, (name, file_name) in attached.items():
        if sha not in files:
            raise Fail(f"{name}: evidence file {file_name!r} expected with SHA-256 {sha}, not in the export")
    if roots and last_root is None:
        raise Fail("--root: expected a checkpoint to compare with, found none")
    if roots and last_root not in roots:
        raise Fail(f"checkpoint #{checkpoints} (the last): root expected one of {', '.join(roots)}, found {last_root}")
    summary = f"OK: {plural(count, 'event')} in {plural(len(chains), 'chain')}, {plural(checkpoints, 'checkpoint')}"
    return summary + (f", {plural(len(attached), 'evidence file')}" if attached else "")


def attachments(e):
    """(sha256, name) of the evidence files a task event attaches, or of the
    original document a plan's load event records (source.document)."""
    body = e["payload"].get(e["event_type"]) if isinstance(e["payload"], dict) else None
    if not isinstance(body, dict):
        return []
    if e["aggregate_type"] == "Plan":
        source = body.get("source")
        document = source.get("document") if isinstance(source, dict) else None
        if isinstance(document, dict) and is_str(document.get("sha256")):
            return [(document["sha256"], document.get("file"))]
        return []
    if e["aggregate_type"] != "Task":
        return []
    found = []
    for a in body.get("attachments") or []:
        if isinstance(a, dict) and is_str(a.get("sha256")):
            found.append((a["sha256"], a.get("name")))
    return found


def check_file(n, e, files):
    """A file line: its base64 bytes must hash to its sha256."""
    sha = e.get("sha256")
    if not is_str(sha) or not is_str(e.get("base64")):
        raise Malformed(f"line {n}: a file line needs \"sha256\" and \"base64\" strings")
    try:
        data = base64.b64decode(e["base64"], validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"line {n}: \"base64\" is not base64")
    computed = hashlib.sha256(data).hexdigest()
    if computed != sha:
        raise Fail(f"line {n}: evidence file expected SHA-256 {sha}, its bytes have {computed}")
    files[sha] = n


def hex_root(text):
    root = text.strip().lower()
    if len(root) != 64 or any(c not in "0123456789abcdef" for c in root):
        raise argparse.ArgumentTypeError(f"not a SHA-256 hex digest: {text!r}")
    return root


def main(argv=None):
    ap = argparse.ArgumentParser(description="Verify a kehoach export (JSON Lines).")
    ap.add_argument("export", help="the .jsonl export file")
    ap.add_argument("--root", nargs="+", action="extend", type=hex_root, default=[],
                    help="checkpoint roots kept outside kehoach; the last checkpoint must match one")
    args = ap.parse_args(argv)
    try:
        with open(args.export, "rb") as f:
            print(verify(f, args.root))
        return 0
    except Fail as err:
        print(f"FAIL: {err}")
        return 1
    except Malformed as err:
        print(f"MALFORMED: {err}")
        return 2
    except OSError as err:
        print(f"MALFORMED: cannot read {args.export}: {err.strerror}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
