"""Measures fabric-cicd 1.4.0's and fabrik's publish of one repository against one
fabrik-emulator (run by `cargo xtask bench-publish`, which reads RESULTS_JSON).

Usage: python publish_bench.py EMULATOR_URL REPOSITORY FABRIK_BINARY WORK_DIR ENV ITEMS FOLDERS RESULTS_JSON MODE

MODE `fast` (an emulator that answers at once): fabric-cicd, fabrik, fabrik_cicd, then
fabric-cicd with its delays overridden (labelled). MODE `fabric` (the emulator's Fabric-like
profile, durations divided by TIME_SCALE): fabric-cicd with its own fixed delays scaled the same
way (FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS, unlabelled: it is the run the bars use), then
fabrik.

Each tool publishes into a fresh workspace twice (the second time the repository is
unchanged). Before each run the emulator's request log is cleared; after it the run's
requests are counted (writes: anything but GET, the definition reads getDefinition and
bulkExportDefinitions excluded). A run fails the
benchmark (exit 1) when it exits non-zero, when the request log overflowed, or when the first
publish leaves other than ITEMS items and FOLDERS folders.

fabric-cicd runs in a child process of its own (`python publish_bench.py cicd-run ...`),
timed around `FabricWorkspace(...)` + `publish_all_items(...)` with its defaults; a last pair
of runs sets FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS and is labelled so (not used for the
bars). fabrik is timed as a whole process, its peak RSS sampled from /proc every 10 ms. The
same child script then runs with `fabrik_cicd` imported instead of `fabric_cicd` (the wheel,
installed into this virtualenv by xtask), timed the same way (tool `fabrik_cicd`). fabrik
publishes a third time with `--refresh=false`, labelled so (not used for the bars).
"""

import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cicd_common import Api, EmulatorCredential, point_at  # noqa: E402

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# The labelled extra: fabric-cicd polling as often as the emulator's operations finish.
OVERRIDE_SECONDS = "0.05"


def cicd_run(url, repo, ws, env, result_file, module="fabric_cicd"):
    """In the child: one publish through `module` (fabric_cicd, or fabrik_cicd: the same
    script with only the import changed), timed; the seconds go to `result_file`."""
    import importlib

    package = importlib.import_module(module)
    if module == "fabric_cicd":
        point_at(url)
    else:
        package.constants.DEFAULT_API_ROOT_URL = url
        package.constants.FABRIC_API_ROOT_URL = url
    FabricWorkspace, publish_all_items = package.FabricWorkspace, package.publish_all_items

    started = time.perf_counter()
    target = FabricWorkspace(workspace_id=ws, repository_directory=repo, environment=env,
                             token_credential=EmulatorCredential())
    publish_all_items(target)
    Path(result_file).write_text(json.dumps({"seconds": time.perf_counter() - started}))


def call_class(r):
    """The kind of call, as the emulator's Fabric profile classes them (docs/EMULATOR.md),
    with the definition reads apart."""
    path, method = GUID.sub("{id}", r["path"]), r["method"]
    if path.endswith(("/getDefinition", "/bulkExportDefinitions")):
        return "definition read"
    if method == "GET":
        if path.startswith("/v1/operations/"):
            return "result" if path.endswith("/result") else "poll"
        # A collection's name is a plural (`/items`, `/workspaces`, `/spark/pools`).
        last = path.rsplit("/", 1)[-1]
        return "list" if last != "{id}" and last.endswith("s") else "read"
    collection = path in ("/v1/workspaces", "/v1/connections") or path.endswith(
        ("/spark/pools", "/shortcuts")) or re.search(r"/workspaces/\{id\}/[a-zA-Z]+s$", path)
    if method == "POST" and collection:
        return "create"
    return "write"


def vmhwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Bench:
    def __init__(self, url, repo, fabrik, work, env, items, folders):
        self.url, self.repo, self.fabrik, self.work = url, repo, fabrik, Path(work)
        self.env, self.items, self.folders = env, items, folders
        self.api = Api(url)
        self.capacity = self.api.capacity()
        self.runs = []

    def fail(self, what, log):
        tail = "".join(Path(log).read_text(errors="replace").splitlines(True)[-20:])
        print(f"FAILED: {what} (log: {log})\n{tail}", flush=True)
        sys.exit(1)

    def requests(self, tag):
        log = self.api.admin("GET", "/requests")
        if log["dropped"]:
            self.fail(f"{tag}: the emulator's request log overflowed ({log['dropped']} dropped)",
                      self.work / f"{tag}.log")
        reqs = log["requests"]
        get_definitions = sum(1 for r in reqs if r["path"].endswith("/getDefinition"))
        bulk_exports = sum(1 for r in reqs if r["path"].endswith("/bulkExportDefinitions"))
        # Both definition reads are spelled POST.
        reads = ("/getDefinition", "/bulkExportDefinitions")
        writes = sum(1 for r in reqs if r["method"] != "GET" and not r["path"].endswith(reads))
        kinds = collections.Counter(f"{r['method']} {GUID.sub('{id}', r['path'])}" for r in reqs)
        top = [[n, k] for k, n in kinds.most_common(4)]
        throttled = sum(1 for r in reqs if r.get("status") == 429)
        classes = collections.Counter(call_class(r) for r in reqs if r.get("status") != 429)
        return len(reqs), writes, get_definitions, bulk_exports, top, dict(classes), throttled

    def check_deployed(self, ws, tag):
        items = self.api.list(f"/workspaces/{ws}/items")
        folders = self.api.list(f"/workspaces/{ws}/folders")
        if len(items) != self.items or len(folders) != self.folders:
            self.fail(f"{tag}: {len(items)} items and {len(folders)} folders deployed, "
                      f"{self.items} and {self.folders} expected", self.work / f"{tag}.log")

    def record(self, tool, label, run, wall, process_wall, tag, peak=None):
        total, writes, get_definitions, bulk_exports, top, classes, throttled = self.requests(tag)
        r = {"tool": tool, "label": label, "run": run, "wall": wall, "processWall": process_wall,
             "requests": total, "writes": writes, "getDefinitions": get_definitions,
             "bulkExports": bulk_exports, "top": top, "peakRssKb": peak,
             "classes": classes, "throttled": throttled, "load": os.getloadavg()[0]}
        self.runs.append(r)
        print(f"{tool}{' (' + label + ')' if label else ''} {run} publish: {wall:.2f} s, "
              f"{total} requests, {writes} writes, {get_definitions} getDefinition, "
              f"{bulk_exports} bulkExportDefinitions"
              + (f", peak RSS {peak / 1024:.1f} MB" if peak else ""), flush=True)

    def cicd(self, label, extra_env, module="fabric_cicd"):
        tool = "fabric-cicd" if module == "fabric_cicd" else module
        tag_base = ("cicd" if module == "fabric_cicd" else module) + ("-override" if label else "")
        ws = self.api.new_workspace(f"bench-{tag_base}", self.capacity, False)
        for run in ("first", "second"):
            tag = f"{tag_base}-{run}"
            log, result = self.work / f"{tag}.log", self.work / f"{tag}.json"
            env = dict(os.environ, **extra_env)
            self.api.admin("DELETE", "/requests")
            started = time.perf_counter()
            with open(log, "w") as out:
                p = subprocess.run([sys.executable, __file__, "cicd-run", self.url, str(self.repo), ws,
                                    self.env, str(result), module], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=self.work)
            process_wall = time.perf_counter() - started
            if p.returncode != 0:
                self.fail(f"{tool} {run} publish exited {p.returncode}", log)
            wall = json.loads(result.read_text())["seconds"]
            self.record(tool, label, run, wall, process_wall, tag)
            if run == "first":
                self.check_deployed(ws, tag)

    def fabrik_runs(self):
        ws = self.api.new_workspace("bench-fabrik", self.capacity, False)
        env = dict(os.environ, FABRIC_TOKEN="bench", FABRIK_LOG="off")
        # The third run, labelled, trusts the deployed record (not used for the bars).
        for run, label, extra in (("first", "", []), ("second", "", []),
                                  ("second", "--refresh=false", ["--refresh=false"])):
            tag = f"fabrik-{run}" + ("-trusting" if label else "")
            log = self.work / f"{tag}.log"
            self.api.admin("DELETE", "/requests")
            with open(log, "w") as out:
                started = time.perf_counter()
                p = subprocess.Popen([self.fabrik, "publish", "--repository", str(self.repo),
                                      "--workspace-id", ws, "--env", self.env,
                                      "--base-url", f"{self.url}/v1",
                                      "--state-dir", str(self.work / "fabrik-state")] + extra,
                                     stdout=out, stderr=subprocess.STDOUT, env=env)
                peak = 0
                while True:
                    peak = max(peak, vmhwm_kb(p.pid))
                    try:
                        p.wait(timeout=0.01)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                wall = time.perf_counter() - started
            if p.returncode != 0:
                self.fail(f"fabrik {run} publish{' ' + label if label else ''} exited {p.returncode}", log)
            self.record("fabrik", label, run, wall, None, tag, peak)
            if run == "first":
                self.check_deployed(ws, tag)


def main():
    if sys.argv[1] == "cicd-run":
        cicd_run(*sys.argv[2:8])
        return
    url, repo, fabrik, work, env, items, folders, results, mode = sys.argv[1:10]
    b = Bench(url.rstrip("/"), Path(repo), fabrik, work, env, int(items), int(folders))
    if mode == "fabric":
        # fabric-cicd's own fixed delays scaled like the service's durations (1/20).
        b.cicd("", {"FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS": OVERRIDE_SECONDS})
        b.fabrik_runs()
    elif mode == "fast":
        b.cicd("", {})
        b.fabrik_runs()
        b.cicd("", {}, module="fabrik_cicd")
        b.cicd(f"FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS={OVERRIDE_SECONDS}",
               {"FABRIC_CICD_RETRY_DELAY_OVERRIDE_SECONDS": OVERRIDE_SECONDS})
    else:
        sys.exit(f"unknown mode {mode!r}: fast or fabric")
    Path(results).write_text(json.dumps({"runs": b.runs}, indent=2))


if __name__ == "__main__":
    main()
