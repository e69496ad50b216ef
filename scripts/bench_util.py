#!/usr/bin/env python3
"""Helpers of scripts/bench.sh (standard library only).

  bench_util.py stats BASE                 the mock's counters: api_requests api_list
                                           api_retrieve file_get file_bytes rate_limited
  bench_util.py client BASE TAG            one client's API requests and 429s at the mock
                                           ("requests rate_limited"; untagged = personafs)
  bench_util.py backend API_BASE N SECONDS a stand-in for the customer's backend: N requests
                                           every SECONDS, evenly, tagged "backend", until
                                           SIGTERM (key from PERSONA_API_KEY)
  bench_util.py config BASE JSON           POST a partial runtime config to the mock
  bench_util.py large-file API_BASE ID     "<file name in the mount>" then its signed URL,
                                           one per line (key from PERSONA_API_KEY)
  bench_util.py hashes DIR                 sorted SHA-256 of every file but *.json under DIR
  bench_util.py median X...                the median of the numbers
  bench_util.py free-port                  a free TCP port on 127.0.0.1
  bench_util.py add RESULTS NAME SUBJECT_S LIMIT_S TARGET OK NOTES [OPTION...]
                                           append one result (ratio = SUBJECT_S / LIMIT_S);
                                           TARGET/OK is the row's first target; options:
                                           --target LABEL=true|false  one more target
                                           --stretch LABEL=true|false a stretch goal (reported,
                                                                      not part of the row's ok)
                                           --subject NAME  what was measured (default personafs)
  bench_util.py report RESULTS OUT         markdown table on stdout, JSON list to OUT
  bench_util.py change-plan MOUNT N REDACT PLAN
                                           pick N inquiries of the mount (every k-th by name):
                                           a document for each unfinished one, a status change
                                           for the others, REDACT of them redacted; JSON to PLAN
  bench_util.py apply BASE PLAN            make the plan's changes at the mock (/_mock/...)
  bench_util.py statuses BASE MOUNT N      N inquiries of the mount (every k-th by name) moved
                                           to needs_review at the mock (a delta of N changes)
  bench_util.py unseen MOUNT PLAN          how many of the plan's changes the mount does not
                                           show yet (new document readable, status, redacted
                                           inquiry empty)
"""

import hashlib
import json
import os
import signal
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request

STATS = ("api_requests", "api_list", "api_retrieve", "file_get", "file_bytes", "rate_limited",
         "api_search")


def stats(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_mock/stats", timeout=30) as r:
        body = json.load(r)
    print(" ".join(str(body.get(k, 0)) for k in STATS))


def client(base, tag):
    with urllib.request.urlopen(base.rstrip("/") + "/_mock/stats", timeout=30) as r:
        counts = json.load(r).get("clients", {}).get(tag, {})
    print(counts.get("requests", 0), counts.get("rate_limited", 0))


def backend(api_base, n, seconds):
    """The customer's own system drawing on the same budget: evenly spaced list calls."""
    every = float(seconds) / int(n)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    request = urllib.request.Request(
        api_base.rstrip("/") + "/inquiries?page%5Bsize%5D=1",
        headers={
            "Authorization": "Bearer " + os.environ["PERSONA_API_KEY"],
            "X-Mock-Client": "backend",
        },
    )
    start, sent = time.monotonic(), 0
    while not stop:
        delay = start + sent * every - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if stop:
            break
        sent += 1
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                r.read()
        except urllib.error.HTTPError:
            pass  # the mock counts the 429s per client


def config(base, body):
    """Change the mock's runtime config (docs/MOCK.md), e.g. files_bandwidth."""
    request = urllib.request.Request(
        base.rstrip("/") + "/_mock/config", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        json.load(r)


def large_file(api_base, inquiry_id):
    """The one file of a `--large-file` inquiry: its name in the mount and a fresh URL."""
    request = urllib.request.Request(
        f"{api_base.rstrip('/')}/inquiries/{inquiry_id}?include=documents",
        headers={
            "Authorization": "Bearer " + os.environ["PERSONA_API_KEY"],
            "Persona-Version": "2023-01-05",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        body = json.load(r)
    for obj in body.get("included") or []:
        for entry in (obj.get("attributes") or {}).get("files") or []:
            if entry.get("url"):
                # FILESYSTEM.md: <object-id>-<Persona filename>
                print(f"{obj['id']}-{entry['filename']}")
                print(entry["url"])
                return
    sys.exit(f"no file in {inquiry_id}")


def hashes(root):
    out = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".json"):
                continue
            h = hashlib.sha256()
            with open(os.path.join(folder, name), "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            out.append(h.hexdigest())
    for digest in sorted(out):
        print(digest)


def median(*values):
    print(f"{statistics.median(float(v) for v in values):.4f}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def number(text):
    return None if text in ("", "-", "null") else float(text)


def add(results, name, subject_s, limit_s, target, ok, notes, *options):
    p, q = number(subject_s), number(limit_s)
    targets = [{"target": target, "ok": ok == "true"}]
    subject = "personafs"
    it = iter(options)
    for option in it:
        value = next(it, None)
        if value is None:
            sys.exit(f"bench_util.py add: {option} needs a value")
        if option == "--subject":
            subject = value
        elif option in ("--target", "--stretch"):
            label, _, flag = value.rpartition("=")
            if flag not in ("true", "false") or not label:
                sys.exit(f"bench_util.py add: {option} wants LABEL=true|false, not {value!r}")
            entry = {"target": label, "ok": flag == "true"}
            if option == "--stretch":
                entry["stretch"] = True
            targets.append(entry)
        else:
            sys.exit(f"bench_util.py add: unknown option {option}")
    row = {
        "name": name,
        "subject": subject,
        "personafs_s": None if p is None else round(p, 4),
        "peer_s": None if q is None else round(q, 4),
        "ratio": round(p / q, 4) if p is not None and q else None,
        "target": "; ".join(("stretch: " if t.get("stretch") else "") + t["target"]
                            for t in targets),
        "ok": all(t["ok"] for t in targets if not t.get("stretch")),
        "targets": targets,
        "notes": notes,
    }
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")


def report(results, out):
    rows = []
    if os.path.exists(results):
        with open(results) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")

    def cell(v, fmt):
        return "–" if v is None else fmt.format(v)

    def targets(r):
        ts = r.get("targets") or [{"target": r["target"], "ok": r["ok"]}]
        if len(ts) == 1:
            return ts[0]["target"]
        return "; ".join(("stretch " if t.get("stretch") else "") + t["target"]
                         + (" ✓" if t["ok"] else " ✗") for t in ts)

    # "s" is the subject's time (personafs, or the FUSE peer the row names); "vs s" what it is
    # held against: local disk, curl, or the peer script.
    print("| workload | s | vs s | ratio | target | ok | notes |")
    print("|---|---:|---:|---:|---|:-:|---|")
    for r in rows:
        print(f"| {r['name']} | {cell(r['personafs_s'], '{:.3f}')} | "
              f"{cell(r['peer_s'], '{:.3f}')} | {cell(r['ratio'], '{:.3f}')} | {targets(r)} | "
              f"{'yes' if r['ok'] else '**no**'} | {r['notes']} |")


UNFINISHED = ("created", "pending")


def attributes_in(mount, inquiry):
    try:
        with open(os.path.join(mount, "inquiries", inquiry, "inquiry.json"), "rb") as f:
            return json.load(f)["data"]["attributes"]
    except (OSError, ValueError, KeyError):
        return {}


def status_in(mount, inquiry):
    return attributes_in(mount, inquiry).get("status")


def change_plan(mount, n, redact, plan):
    names = sorted(os.listdir(os.path.join(mount, "inquiries")))
    step = max(1, len(names) // int(n))
    picked = names[::step][: int(n)]
    changes = []
    for i, inquiry in enumerate(picked):
        attributes = attributes_in(mount, inquiry)
        status = attributes.get("status")
        if status is None or attributes.get("redacted-at"):
            continue  # already redacted: nothing to change
        if i < int(redact):
            changes.append({"id": inquiry, "kind": "redact"})
        elif status in UNFINISHED:
            changes.append({"id": inquiry, "kind": "document", "filename": f"late-{i}.jpg",
                            "size": 2000 + i})
        else:
            changes.append({"id": inquiry, "kind": "status",
                            "status": "declined" if status == "approved" else "approved"})
    with open(plan, "w") as f:
        json.dump(changes, f)


def mock_post(base, path, body):
    request = urllib.request.Request(
        base.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        r.read()


def apply(base, plan):
    with open(plan) as f:
        changes = json.load(f)
    made = []
    for c in changes:
        path = f"/_mock/inquiries/{c['id']}"
        try:
            if c["kind"] == "redact":
                mock_post(base, path + "/redact", {})
            elif c["kind"] == "document":
                mock_post(base, path + "/documents",
                          {"filename": c["filename"], "size": c["size"]})
            else:
                mock_post(base, path + "/status", {"status": c["status"]})
        except urllib.error.HTTPError as e:
            print(f"{c['kind']} of {c['id']} refused: {e.code}", file=sys.stderr)
            continue
        made.append(c)
    with open(plan, "w") as f:
        json.dump(made, f)
    print(len(made))


def statuses(base, mount, n):
    names = sorted(os.listdir(os.path.join(mount, "inquiries")))
    step = max(1, len(names) // int(n))
    changed = 0
    for inquiry in names[::step][: int(n)]:
        try:
            mock_post(base, f"/_mock/inquiries/{inquiry}/status", {"status": "needs_review"})
            changed += 1
        except urllib.error.HTTPError:
            pass  # a redacted inquiry keeps its status
    print(changed)


def unseen(mount, plan):
    with open(plan) as f:
        changes = json.load(f)
    missing = 0
    for c in changes:
        inquiry = os.path.join(mount, "inquiries", c["id"])
        if c["kind"] == "redact":
            files = []
            for section in ("document", "selfie"):
                try:
                    files += os.listdir(os.path.join(inquiry, section))
                except OSError:
                    pass
            missing += bool(files)
        elif c["kind"] == "document":
            docs = os.path.join(inquiry, "document")
            try:
                found = [n for n in os.listdir(docs) if n.endswith(c["filename"])]
                ok = bool(found) and os.path.getsize(os.path.join(docs, found[0])) == c["size"]
            except OSError:
                ok = False
            missing += not ok
        else:
            missing += status_in(mount, c["id"]) != c["status"]
    print(missing)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    {"stats": stats, "client": client, "backend": backend, "config": config, "large-file": large_file, "hashes": hashes,
     "median": median, "free-port": free_port, "add": add, "report": report,
     "change-plan": change_plan, "apply": apply, "statuses": statuses,
     "unseen": unseen}[command](*args)


if __name__ == "__main__":
    main()
