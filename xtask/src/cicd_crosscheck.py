"""fabric-cicd 1.4.0 and fabrik publish the same repository; compare what each deployed
(run by `cargo xtask cicd-crosscheck`).

Usage: python cicd_crosscheck.py EMULATOR_URL REPOSITORY FABRIK_BINARY WORK_DIR REPORT_FILE

For each environment (test, prod), on one emulator: fabric-cicd publishes REPOSITORY into a
fresh workspace (`publish_all_items`, every item type, `enable_shortcut_publish` as the
fixture's config.yml asks), and `fabrik publish` publishes it into another. Then both
workspaces are read back and, after replacing every id they hold (workspace, items, folders,
Spark pools) by the name it stands for, compared:

- folders (paths) and items (type, name, folder path, description);
- definitions (`getDefinition`), part by part: a part that parses as JSON is compared as
  JSON (so formatting and key order do not count), any other part as text; `.platform` by its
  metadata and logicalId (the service derives the rest);
- the item state the emulator keeps beyond the definition (`GET /_emulator/state`): a
  variable library's active value set, an environment's published state, a lakehouse's
  shortcuts and schemas, a warehouse's collation, bound connections.

Then, for environment test, one scenario per feature flag that changes what is published
(`SCENARIOS`: items_to_include, folder_exclude_regex, folder_path_to_include and
shortcut_exclude_regex with their experimental flags, disable_workspace_folder_publish):
fabric-cicd's `publish_all_items` with the flags and the keyword, and `fabrik publish
--cicd-config` with a config.yml holding the same `publish:` key and `features:`, each into a
fresh workspace, compared the same way.

Every difference is printed. A difference listed in EXPECTED below (a post-step fabrik does
not do yet) is reported as expected; any other fails the run (exit 1). fabrik's second
publish must also plan nothing (`--plan --detailed-exitcode` exits 0).
"""

import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cicd_common import Api, EmulatorCredential, decode, point_at  # noqa: E402

from fabric_cicd import FabricWorkspace, append_feature_flag, publish_all_items  # noqa: E402

URL, REPO, FABRIK, WORK, REPORT = (sys.argv[1].rstrip("/"), Path(sys.argv[2]), sys.argv[3],
                                   Path(sys.argv[4]), Path(sys.argv[5]))
ENVIRONMENTS = ("test", "prod")
REPO_LOGICAL_IDS = {json.loads(p.read_text())["config"]["logicalId"].lower() for p in REPO.rglob(".platform")}
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class _Missing:
    def __repr__(self):
        return "<absent>"


MISSING = _Missing()
ANY = object()


class PerEnv:
    """An expected value that depends on the environment."""

    def __init__(self, **by_env):
        self.by_env = by_env


# Setting/Sparkcompute.yml as fabric-cicd renders it (spark_pool), with the pool's id named.
SPARKCOMPUTE = """enable_native_execution_engine: false
instance_pool_id: {pool}
driver_cores: 8
driver_memory: 56g
executor_cores: 8
executor_memory: 56g
dynamic_executor_allocation:
  enabled: true
  min_executors: 1
  max_executors: 4
runtime_version: 1.3
"""

# The differences fabrik is known to have, each a post-step of fabric-cicd it does not do yet.
# `item` is "Type Name"; `where` names the aspect and its JSON path; `cicd` and `fabrik` are
# the values (after id replacement; "{env}" stands for the environment; ANY matches any
# value). A difference not listed here fails the cross-check; an entry that no longer
# differs is reported so it can be removed.
EXPECTED = [
    # None: fabrik now does fabric-cicd's post-steps the fixture exercises (the active value
    # set, the Environment's staging publish, lakehouse shortcuts).
    # semantic_model_binding (POST /semanticModels/{id}/bindConnection): the fixture's
    # parameter.yml has no binding, so neither tool binds and no entry is needed.
]


def folder_paths(folders):
    by_id = {f["id"]: f for f in folders}

    def path(fid):
        f = by_id[fid]
        parent = f.get("parentFolderId")
        return (path(parent) if parent else "") + "/" + f["displayName"]

    return {fid: path(fid) for fid in by_id}


def replace_ids(value, names):
    """Every GUID in `value` (strings, keys) that `names` knows, replaced by its name."""
    if isinstance(value, str):
        return GUID.sub(lambda m: names.get(m.group(0).lower(), m.group(0)), value)
    if isinstance(value, list):
        return [replace_ids(v, names) for v in value]
    if isinstance(value, dict):
        return {replace_ids(k, names): replace_ids(v, names) for k, v in value.items()}
    return value


def part_view(path, payload, names):
    raw = decode(payload)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"binary": raw.hex()}
    text = replace_ids(text, names)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"text": text}
    if path == ".platform":
        return {"platform": {"metadata": parsed.get("metadata"),
                             "logicalId": parsed.get("config", {}).get("logicalId")}}
    return {"json": parsed}


# Fields of the emulator's item state that the tools do not choose: ids and times it made up.
STATE_SKIP = {"id", "type", "displayName", "description", "folderId", "definition", "createdAt",
              "logicalId"}


def state_view(item, names):
    st = {k: v for k, v in item.items() if k not in STATE_SKIP}
    extra = st.get("extra")
    if isinstance(extra, dict):
        publish = extra.get("publish")
        if isinstance(publish, dict):
            # When the environment publish started, and the version id the emulator drew.
            publish.pop("startedAt", None)
            publish.pop("targetVersion", None)
        published = extra.get("published")
        if isinstance(published, dict) and isinstance(published.get("parts"), list):
            published["parts"] = {p["path"]: part_view(p["path"], p["payload"], names)
                                  for p in published["parts"]}
    return replace_ids(st, names)


def snapshot(api, ws):
    folders = api.list(f"/workspaces/{ws}/folders")
    paths = folder_paths(folders)
    items = api.list(f"/workspaces/{ws}/items")
    names = {ws.lower(): "<workspace>"}
    names.update({fid.lower(): f"<folder {p}>" for fid, p in paths.items()})
    names.update({i["id"].lower(): f"<{i['type']} {i['displayName']}>" for i in items})
    for pool in api.list(f"/workspaces/{ws}/spark/pools"):
        names[pool["id"].lower()] = f"<{pool.get('type', '')} pool {pool['name']}>"
    state = next(w for w in api.admin("GET", "/state")["workspaces"] if w["id"] == ws)
    state_items = {i["id"]: i for i in state["items"]}
    # An item created without a definition (a lakehouse, a warehouse) gets its logicalId from
    # the service, as it would in Fabric: named, so that only the repository's must match.
    for i in items:
        lid = (state_items[i["id"]].get("logicalId") or "").lower()
        if lid and lid not in REPO_LOGICAL_IDS:
            names[lid] = f"<logicalId the service gave {i['type']} {i['displayName']}>"
    snap = {"folders": sorted(paths.values()), "items": {}}
    for i in items:
        entry = {"folder": paths.get(i.get("folderId"), "/"), "description": i.get("description", "")}
        status, r = api.try_call("POST", f"/workspaces/{ws}/items/{i['id']}/getDefinition")
        if status == 200:
            entry["definition"] = {p["path"]: part_view(p["path"], p["payload"], names)
                                   for p in r["definition"]["parts"]}
        else:
            entry["definition"] = f"HTTP {status} {(r or {}).get('errorCode') if isinstance(r, dict) else r}"
        entry["state"] = state_view(state_items[i["id"]], names)
        snap["items"][f"{i['type']} {i['displayName']}"] = entry
    return snap


def diff_values(a, b, path="$"):
    """(json path, a, b) for every place the two differ; an absent dict is read as {} so a
    difference is reported at its deepest key."""
    if isinstance(a, dict) and (isinstance(b, dict) or b is MISSING) or (a is MISSING and isinstance(b, dict)):
        a = {} if a is MISSING else a
        b = {} if b is MISSING else b
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{path}.{k}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) else f"{path}[{json.dumps(k)}]"
            out += diff_values(a.get(k, MISSING), b.get(k, MISSING), key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for n, (x, y) in enumerate(zip(a, b)):
            out += diff_values(x, y, f"{path}[{n}]")
        return out
    if type(a) is not type(b) or a != b:
        return [(path, a, b)]
    return []


def differences(env, cicd, fabrik):
    out = []

    def add(item, where, a, b):
        out.append({"env": env, "item": item, "where": where, "cicd": a, "fabrik": b})

    if cicd["folders"] != fabrik["folders"]:
        add("-", "folders", cicd["folders"], fabrik["folders"])
    for key in sorted(set(cicd["items"]) | set(fabrik["items"])):
        a, b = cicd["items"].get(key), fabrik["items"].get(key)
        if a is None or b is None:
            add(key, "item", "deployed" if a else MISSING, "deployed" if b else MISSING)
            continue
        for field in ("folder", "description"):
            if a[field] != b[field]:
                add(key, field, a[field], b[field])
        da, db = a["definition"], b["definition"]
        if isinstance(da, str) or isinstance(db, str):
            if da != db:
                add(key, "definition", da, db)
        else:
            for part in sorted(set(da) | set(db)):
                pa, pb = da.get(part, MISSING), db.get(part, MISSING)
                if pa is MISSING or pb is MISSING:
                    add(key, f"part {part}", pa, pb)
                elif "text" in pa and "text" in pb:
                    if pa["text"] != pb["text"]:
                        add(key, f"part {part}", pa["text"], pb["text"])
                elif set(pa) == set(pb) and len(pa) == 1:
                    (kind,) = pa
                    for path, x, y in diff_values(pa[kind], pb[kind]):
                        add(key, f"part {part} ({kind}) {path}", x, y)
                else:
                    add(key, f"part {part}", pa, pb)
        for path, x, y in diff_values(a["state"], b["state"]):
            add(key, f"state {path}", x, y)
    return out


def expected_value(pattern, value, env):
    if pattern is ANY:
        return True
    if isinstance(pattern, PerEnv):
        pattern = pattern.by_env.get(env, MISSING)
        if pattern is MISSING:
            return False
    if isinstance(pattern, str):
        return value == pattern.replace("{env}", env)
    return type(pattern) is type(value) and pattern == value


def allowed(d):
    for n, e in enumerate(EXPECTED):
        if (e["item"] == d["item"] and e["where"] == d["where"]
                and expected_value(e["cicd"], d["cicd"], d["env"])
                and expected_value(e["fabrik"], d["fabrik"], d["env"])):
            return n
    return None


def show(v):
    if v is MISSING:
        return "<absent>"
    if isinstance(v, str) and "\n" in v:
        return "\n" + "\n".join("      " + line for line in v.splitlines())
    return json.dumps(v, sort_keys=True)


def text_diff(a, b):
    return "\n".join("      " + line for line in difflib.unified_diff(
        a.splitlines(), b.splitlines(), "fabric-cicd", "fabrik", lineterm=""))


def run_fabrik(args, log):
    env = dict(os.environ, FABRIC_TOKEN="crosscheck", FABRIK_LOG="off")
    p = subprocess.run([FABRIK, *args], env=env, capture_output=True, text=True)
    log.write(f"$ fabrik {' '.join(args)}\n{p.stdout}{p.stderr}exit {p.returncode}\n")
    return p


# One scenario per feature flag that changes what is published (environment test): the flags
# fabric-cicd needs, and the `publish:` key of config.yml with its value. fabric-cicd runs
# `publish_all_items` with the flags appended and the key as its keyword argument; fabrik runs
# `fabrik publish --cicd-config` with a config.yml holding the same key and `features:`.
# Each scenario selects items whose references it also selects (the workspaces start empty).
SCENARIOS = [
    ("items_to_include", ["enable_experimental_features", "enable_items_to_include"],
     {"items_to_include": ["Utils.Notebook", "Config.VariableLibrary", "Spark.Environment"]}),
    ("folder_exclude_regex", ["enable_experimental_features", "enable_exclude_folder"],
     {"folder_exclude_regex": "^/pipelines"}),
    ("folder_path_to_include", ["enable_experimental_features", "enable_include_folder"],
     {"folder_path_to_include": ["/notebooks"]}),
    ("shortcut_exclude_regex", ["enable_experimental_features", "enable_shortcut_exclude"],
     {"shortcut_exclude_regex": ".*"}),
    ("disable_workspace_folder_publish", ["disable_workspace_folder_publish"], {}),
]
# config.yml's `publish:` key → publish_all_items' keyword.
KEYWORD = {"items_to_include": "items_to_include", "folder_exclude_regex": "folder_path_exclude_regex",
           "folder_path_to_include": "folder_path_to_include",
           "shortcut_exclude_regex": "shortcut_exclude_regex"}


def set_flags(flags):
    """fabric-cicd's process-wide flag set: exactly `flags` (with enable_shortcut_publish)."""
    from fabric_cicd import constants
    constants.FEATURE_FLAG.clear()
    for f in ["enable_shortcut_publish", *flags]:
        append_feature_flag(f)


def scenario_config(name, ws, flags, publish):
    """A config.yml publishing REPO into `ws` as the scenario asks, and nothing unpublished."""
    lines = ["core:", f"  workspace_id: {ws}", f"  repository_directory: {json.dumps(str(REPO))}"]
    if (REPO / "parameter.yml").is_file():
        lines.append(f"  parameter: {json.dumps(str(REPO / 'parameter.yml'))}")
    lines.append("publish:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in publish.items()]
    lines += ["  skip: false", "unpublish:", "  skip: true",
              f"features: {json.dumps(['enable_shortcut_publish', *flags])}"]
    path = WORK / f"config-{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Report:
    def __init__(self):
        self.lines, self.unexpected, self.seen, self.summary = [], 0, set(), []

    def compare(self, label, api, ws_cicd, ws_fabrik, fabrik_args, log):
        """fabrik publishes with `fabrik_args` (fabric-cicd already did into ws_cicd); its second
        publish must plan nothing; then both workspaces are compared."""
        p = run_fabrik(["publish", *fabrik_args], log)
        if p.returncode != 0:
            raise SystemExit(f"{label}: fabrik publish failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        again = run_fabrik(["publish", *fabrik_args, "--plan", "--detailed-exitcode"], log)
        if again.returncode != 0:
            self.lines.append(f"[{label}] UNEXPECTED: fabrik's second publish is not a no-op "
                              f"(--plan --detailed-exitcode exited {again.returncode}):\n{again.stdout}")
            self.unexpected += 1
        cicd, fabrik = snapshot(api, ws_cicd), snapshot(api, ws_fabrik)
        diffs = differences(label, cicd, fabrik)
        self.summary.append({"run": label, "items": len(cicd["items"]), "folders": len(cicd["folders"]),
                             "fabrik_items": len(fabrik["items"]), "differences": len(diffs)})
        for d in diffs:
            n = allowed(d)
            tag = "expected" if n is not None else "UNEXPECTED"
            if n is None:
                self.unexpected += 1
            else:
                self.seen.add(n)
            head = f"[{label}] {tag}: {d['item']}: {d['where']}"
            if isinstance(d["cicd"], str) and isinstance(d["fabrik"], str) and "\n" in d["cicd"] + d["fabrik"]:
                self.lines.append(f"{head}\n{text_diff(d['cicd'], d['fabrik'])}")
            else:
                self.lines.append(f"{head}\n    fabric-cicd: {show(d['cicd'])}\n    fabrik:      {show(d['fabrik'])}")


def main():
    point_at(URL)
    api = Api(URL)
    capacity = api.capacity()
    report = Report()
    fabrik_log = open(WORK / "crosscheck-fabrik.log", "w")
    for env in ENVIRONMENTS:
        set_flags([])
        ws_cicd = api.new_workspace(f"crosscheck-cicd-{env}", capacity, env == "test")
        ws_fabrik = api.new_workspace(f"crosscheck-fabrik-{env}", capacity, env == "test")
        publish_all_items(FabricWorkspace(workspace_id=ws_cicd, repository_directory=str(REPO),
                                          environment=env, token_credential=EmulatorCredential()))
        common = ["--repository", str(REPO), "--workspace-id", ws_fabrik, "--env", env,
                  "--cicd-feature", "enable_shortcut_publish",
                  "--base-url", f"{URL}/v1", "--state-dir", str(WORK / f"state-{env}")]
        report.compare(env, api, ws_cicd, ws_fabrik, common, fabrik_log)
    env = "test"
    for name, flags, publish in SCENARIOS:
        set_flags(flags)
        ws_cicd = api.new_workspace(f"crosscheck-cicd-{name}", capacity, True)
        ws_fabrik = api.new_workspace(f"crosscheck-fabrik-{name}", capacity, True)
        publish_all_items(FabricWorkspace(workspace_id=ws_cicd, repository_directory=str(REPO),
                                          environment=env, token_credential=EmulatorCredential()),
                          **{KEYWORD[k]: v for k, v in publish.items()})
        config = scenario_config(name, ws_fabrik, flags, publish)
        args = ["--cicd-config", str(config), "--env", env, "--base-url", f"{URL}/v1",
                "--state-dir", str(WORK / f"state-{name}")]
        report.compare(f"{env} {name}", api, ws_cicd, ws_fabrik, args, fabrik_log)
    for n, e in enumerate(EXPECTED):
        if n not in report.seen:
            report.lines.append(f"note: allow-list entry no longer differs in any run, remove it: "
                                f"{e['item']}: {e['where']}")
    report.lines.append(json.dumps({"runs": report.summary, "unexpected": report.unexpected}))
    REPORT.write_text("\n".join(report.lines) + "\n")
    sys.exit(1 if report.unexpected else 0)


if __name__ == "__main__":
    main()
