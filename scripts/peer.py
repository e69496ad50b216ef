#!/usr/bin/env python3
"""The peer of personafs in the benchmark: what a user writes today without it.

Lists inquiries (pages of 100, following links.next), retrieves each with
include=documents,selfies,verifications, and downloads every file the mount would show
(FILESYSTEM.md: document/* files, else the government-id/document verifications' files;
selfie/* files with URLs, else the verification/selfie photos and video) into OUT/<inquiry>/.
Python standard library only. The API key comes from PERSONA_API_KEY, never from argv.

  peer.py --api-base URL [--workers N] [--out DIR] [--list-only | --no-download]

Prints one line: elapsed seconds and counts (inquiries, files, bytes, API requests).
"""

import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DOCUMENT_FALLBACK = ("verification/government-id", "verification/document")
SELFIE_FALLBACK = ("verification/selfie",)
NAMED = ("front-photo", "back-photo", "selfie-photo", "center-photo", "left-photo",
         "right-photo", "video")


class Api:
    def __init__(self, base, key):
        self.base = base.rstrip("/")
        self.origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(self.base))
        self.headers = {
            "Authorization": "Bearer " + key,
            "Persona-Version": "2023-01-05",
            "Key-Inflection": "kebab",
            "Accept": "application/json",
        }
        self.requests = 0
        self.lock = threading.Lock()

    def get(self, path_or_url):
        """GET JSON; waits out 429s as RateLimit-Reset says, retries 5xx a few times."""
        if path_or_url.startswith("/"):
            url = self.origin + path_or_url
        elif "://" in path_or_url:
            url = path_or_url
        else:
            url = self.base + "/" + path_or_url
        for attempt in range(8):
            with self.lock:
                self.requests += 1
            request = urllib.request.Request(url, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.load(response)
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    time.sleep(float(e.headers.get("RateLimit-Reset") or 1) + 0.1)
                elif e.code >= 500 and attempt < 4:
                    time.sleep(0.2 * 2 ** attempt)
                else:
                    raise RuntimeError(f"GET {urllib.parse.urlsplit(url).path}: HTTP {e.code}")
        raise RuntimeError(f"GET {urllib.parse.urlsplit(url).path}: gave up")

    def inquiry_pages(self):
        """Yield the ids of each page of the listing, newest first."""
        page = self.get("inquiries?page%5Bsize%5D=100")
        while True:
            yield [item["id"] for item in page["data"]]
            following = (page.get("links") or {}).get("next")
            if not following:
                return
            page = self.get(following)


def urls_of(obj):
    """Every file URL of one object, in the order the mount names them, without repeats."""
    attrs = obj.get("attributes") or {}
    urls = []
    for key in NAMED:
        value = attrs.get(key)
        if isinstance(value, dict) and value.get("url"):
            urls.append(value["url"])
    for key in NAMED:
        value = attrs.get(key + "-url")
        if isinstance(value, str) and value:
            urls.append(value)
    for entry in attrs.get("photo-urls") or []:
        if isinstance(entry, dict):
            urls.extend(entry[k] for k in ("url", "normalized-url") if entry.get(k))
    for key in ("files", "files-normalized"):
        for entry in attrs.get(key) or []:
            if isinstance(entry, dict) and entry.get("url"):
                urls.append(entry["url"])
    return urls


def files_to_download(body):
    """The URLs the mount shows for one retrieved inquiry: document/ then selfie/."""
    if (body["data"].get("attributes") or {}).get("redacted-at"):
        return []
    included = body.get("included") or []
    out = []
    for prefix, fallback in (("document/", DOCUMENT_FALLBACK), ("selfie/", SELFIE_FALLBACK)):
        chosen = [o for o in included if o.get("type", "").startswith(prefix)]
        if not any(urls_of(o) for o in chosen):
            chosen = [o for o in included if o.get("type") in fallback]
        seen = set()
        for obj in chosen:
            for url in urls_of(obj):
                if url not in seen:
                    seen.add(url)
                    out.append(url)
    return out


def download(url, path):
    """Stream one signed URL to `path` (no API key: the URL carries its own token)."""
    for attempt in range(5):
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
                size = 0
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    size += len(chunk)
                return size
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == 4:
                raise RuntimeError(f"download {os.path.basename(path)}: HTTP {e.code}")
        time.sleep(0.2 * 2 ** attempt)
    return 0


def fetch(api, inquiry_id, out, download_files):
    body = api.get(f"inquiries/{inquiry_id}?include=documents,selfies,verifications")
    if out is None:
        return 0, 0
    folder = os.path.join(out, inquiry_id)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "inquiry.json"), "w") as f:
        json.dump(body, f)
    if not download_files:
        return 0, 0
    files = nbytes = 0
    for n, url in enumerate(files_to_download(body)):
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        nbytes += download(url, os.path.join(folder, f"{n:03d}-{name}"))
        files += 1
    return files, nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", help="directory to download into (default: nothing saved)")
    parser.add_argument("--list-only", action="store_true", help="only list the inquiries")
    parser.add_argument("--no-download", action="store_true",
                        help="list and retrieve every inquiry, download no file")
    args = parser.parse_args()
    key = os.environ.get("PERSONA_API_KEY")
    if not key:
        sys.exit("peer.py: set PERSONA_API_KEY")
    api = Api(args.api_base, key)
    if args.out is None and not (args.no_download or args.list_only):
        sys.exit("peer.py: --out DIR is needed to download")
    start = time.monotonic()
    ids = []
    files = nbytes = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
        jobs = []
        # Retrieves start as soon as their page arrives.
        for page in api.inquiry_pages():
            ids.extend(page)
            if not args.list_only:
                jobs += [pool.submit(fetch, api, i, args.out, not args.no_download) for i in page]
        for job in jobs:
            f, b = job.result()
            files += f
            nbytes += b
    elapsed = time.monotonic() - start
    print(f"elapsed={elapsed:.3f} inquiries={len(ids)} files={files} bytes={nbytes} "
          f"api_requests={api.requests} workers={args.workers}")


if __name__ == "__main__":
    main()
