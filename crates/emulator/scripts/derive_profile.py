#!/usr/bin/env python3
"""Derives the emulator's `--profile fabric` table from the recorded real Fabric trace.

Usage: derive_profile.py [TRACE] [OUT]
  TRACE  http_trace.json.gz (default: ../shared/fabric-real-trace/http_trace.json.gz from the
         repository root's parent)
  OUT    where to write the table (default: crates/emulator/src/profile/fabric.json)

Python 3 standard library only. The output is deterministic: run it again on the same trace
and the file does not change.

What it measures:
  * latency per endpoint class: response timestamp minus request timestamp of each distinct
    exchange (the recording repeats most exchanges verbatim; a repeat is counted once);
  * long-running operations: the server-side duration (`lastUpdatedTimeUtc - createdTimeUtc`
    of the first terminal state polled) and the `Retry-After` of the 202 that started them;
  * environment publish: `publishDetails.endTime - startTime` as the environment reports it,
    and the `Retry-After` of the publish 202.

The endpoint classes are the emulator's (`profile::EndpointClass`), decided the same way:
  poll    GET /v1/operations/{id}
  result  GET /v1/operations/{id}/result
  list    GET of a collection (an odd number of segments after /v1)
  read    any other GET
  create  POST to a collection: /workspaces, /connections, /workspaces/{id}/{collection}
  write   any other POST, PATCH, PUT or DELETE (updates, definitions, actions)
"""

import gzip
import json
import os
import re
import sys
from datetime import datetime

QUANTILES = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0]
CLASSES = ["read", "list", "create", "write", "poll", "result"]
# POSTs to three-segment paths that are actions, not collections.
ACTIONS = {"assignToCapacity", "unassignFromCapacity", "provisionIdentity", "deprovisionIdentity"}
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def segments(url):
    """Path segments after /v1, without scheme, host, query or a trailing slash."""
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0].rstrip("/")
    segs = [s for s in path.split("/") if s]
    if segs and segs[0] == "v1":
        segs = segs[1:]
    return segs


def endpoint_class(method, url):
    segs = segments(url)
    if method == "GET":
        if len(segs) == 2 and segs[0] == "operations":
            return "poll"
        if len(segs) == 3 and segs[0] == "operations" and segs[2] == "result":
            return "result"
        return "list" if len(segs) % 2 == 1 else "read"
    if method == "POST":
        if segs in (["workspaces"], ["connections"]):
            return "create"
        if len(segs) == 3 and segs[0] == "workspaces" and segs[2] not in ACTIONS:
            return "create"
    return "write"


def timestamp(s):
    # Operation states carry 7 fractional digits and no zone; fromisoformat takes 6.
    s = s.rstrip("Z")
    m = re.match(r"^(.*\.\d{6})\d*(.*)$", s)
    if m:
        s = m.group(1) + m.group(2)
    t = datetime.fromisoformat(s)
    return t.replace(tzinfo=None) if t.tzinfo is None else t


def quantile(sorted_values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    i = p * (len(sorted_values) - 1)
    lo = int(i)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (i - lo)


def summary(values):
    v = sorted(values)
    return {
        "n": len(v),
        "ms": {f"p{round(p * 100)}": round(quantile(v, p)) for p in QUANTILES},
    }


def distinct(traces):
    seen = set()
    for t in traces:
        key = json.dumps(t, sort_keys=True)
        if key not in seen:
            seen.add(key)
            yield t


def body(x):
    if isinstance(x, str):
        try:
            return json.loads(x) if x else None
        except ValueError:
            return None
    return x


def derive(trace):
    exchanges = [t for t in distinct(trace["traces"]) if t["response"] is not None]
    latency = {c: [] for c in CLASSES}
    started = {}  # operation id -> Retry-After of the 202 that started it
    finished = {}  # operation id -> duration in ms
    publish_retry_after, publish_ms = [], []
    for t in exchanges:
        req, resp = t["request"], t["response"]
        ms = (timestamp(resp["timestamp"]) - timestamp(req["timestamp"])).total_seconds() * 1000
        latency[endpoint_class(req["method"], req["url"])].append(ms)
        headers = resp["headers"]
        op = headers.get("x-ms-operation-id")
        if resp["status_code"] == 202 and op and req["method"] == "POST":
            if req["url"].split("?")[0].endswith("/staging/publish"):
                publish_retry_after.append(int(headers["Retry-After"]))
            else:
                started[op] = int(headers["Retry-After"])
        state = body(resp["body"])
        if endpoint_class(req["method"], req["url"]) == "poll" and isinstance(state, dict):
            oid = segments(req["url"])[1]
            if state.get("status") in ("Succeeded", "Failed") and oid not in finished:
                d = timestamp(state["lastUpdatedTimeUtc"]) - timestamp(state["createdTimeUtc"])
                finished[oid] = d.total_seconds() * 1000
        if isinstance(state, dict):
            for item in state.get("value", []) if isinstance(state.get("value"), list) else []:
                details = (item.get("properties") or {}).get("publishDetails") or {}
                if details.get("state") == "Success" and details.get("endTime"):
                    d = timestamp(details["endTime"]) - timestamp(details["startTime"])
                    publish_ms.append(d.total_seconds() * 1000)
    lro_ms = [ms for oid, ms in finished.items() if oid in started]
    retry_after = sorted(set(started.values()))
    if len(retry_after) != 1 or len(set(publish_retry_after)) != 1:
        sys.exit(f"expected one Retry-After each, got {retry_after} and {publish_retry_after}")
    return {
        "source": "../shared/fabric-real-trace/http_trace.json.gz (microsoft/fabric-cicd test "
        "fixture, recorded against the real Fabric API on 2026-06-25); derived by "
        "crates/emulator/scripts/derive_profile.py",
        "exchanges": {"recorded": len(trace["traces"]), "distinct_with_response": len(exchanges)},
        "latency": {c: summary(latency[c]) for c in CLASSES},
        "operation": {"retry_after_s": retry_after[0], "duration": summary(lro_ms)},
        "environment_publish": {
            "retry_after_s": publish_retry_after[0],
            # One publish reports Success more than once; it is one sample.
            "duration": summary(sorted(set(publish_ms))),
        },
        "throttled": sum(1 for t in exchanges if t["response"]["status_code"] == 429),
    }


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    trace_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "..", "shared", "fabric-real-trace", "http_trace.json.gz")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        root, "crates", "emulator", "src", "profile", "fabric.json")
    with gzip.open(trace_path, "rt", encoding="utf-8") as f:
        table = derive(json.load(f))
    with open(out, "w", encoding="utf-8") as f:
        json.dump(table, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
