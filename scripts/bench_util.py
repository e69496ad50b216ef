#!/usr/bin/env python3
"""Helpers of scripts/bench.sh (standard library only).

  bench_util.py stats BASE                 the mock's counters: api_requests api_list
                                           api_retrieve file_get file_bytes rate_limited
  bench_util.py large-file API_BASE ID     "<file name in the mount>" then its signed URL,
                                           one per line (key from PERSONA_API_KEY)
  bench_util.py hashes DIR                 sorted SHA-256 of every file but *.json under DIR
  bench_util.py add RESULTS NAME PERSONAFS_S PEER_S TARGET OK NOTES
                                           append one result (ratio = personafs_s / peer_s)
  bench_util.py report RESULTS OUT         markdown table on stdout, JSON list to OUT
"""

import hashlib
import json
import os
import sys
import urllib.request

STATS = ("api_requests", "api_list", "api_retrieve", "file_get", "file_bytes", "rate_limited")


def stats(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_mock/stats", timeout=30) as r:
        body = json.load(r)
    print(" ".join(str(body.get(k, 0)) for k in STATS))


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


def number(text):
    return None if text in ("", "-", "null") else float(text)


def add(results, name, personafs_s, peer_s, target, ok, notes):
    p, q = number(personafs_s), number(peer_s)
    row = {
        "name": name,
        "personafs_s": None if p is None else round(p, 4),
        "peer_s": None if q is None else round(q, 4),
        "ratio": round(p / q, 4) if p is not None and q else None,
        "target": target,
        "ok": ok == "true",
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

    print("| workload | personafs s | peer s | ratio | target | ok | notes |")
    print("|---|---:|---:|---:|---|:-:|---|")
    for r in rows:
        print(f"| {r['name']} | {cell(r['personafs_s'], '{:.3f}')} | "
              f"{cell(r['peer_s'], '{:.3f}')} | {cell(r['ratio'], '{:.3f}')} | {r['target']} | "
              f"{'yes' if r['ok'] else '**no**'} | {r['notes']} |")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    {"stats": stats, "large-file": large_file, "hashes": hashes, "add": add,
     "report": report}[command](*args)


if __name__ == "__main__":
    main()
