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

STATS = ("api_requests", "api_list", "api_retrieve", "file_get", "file_bytes", "rate_limited")


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


def main():
    command, args = sys.argv[1], sys.argv[2:]
    {"stats": stats, "client": client, "backend": backend, "config": config, "large-file": large_file, "hashes": hashes,
     "median": median, "free-port": free_port, "add": add, "report": report}[command](*args)


if __name__ == "__main__":
    main()
