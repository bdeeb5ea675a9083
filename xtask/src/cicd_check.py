"""fabric-cicd 1.4.0 against fabrik-emulator (run by `cargo xtask cicd-check`).

Usage: python cicd_check.py EMULATOR_URL REPOSITORY WORK_DIR

For each environment (test, prod): creates a workspace on the emulator's capacity (test
also gets the workspace Spark pool `SmallPool` its parameter.yml names; prod uses the
capacity pool `ProdCapacityPool` the emulator was started with), publishes REPOSITORY with
every item type in scope and `enable_shortcut_publish`, reads every definition back and
compares it with what fabric-cicd sent, then removes `notebooks/shared` and
`pipelines/Orchestrate.DataPipeline` from a copy of the repository, publishes the copy and
unpublishes the orphans, and checks they (and the emptied folder) are gone. Prints a JSON
summary on the last line; exits non-zero on the first failure.
"""

import base64
import json
import shutil
import sys
import time
from pathlib import Path

import requests
from azure.core.credentials import AccessToken

import fabric_cicd
from fabric_cicd import FabricWorkspace, append_feature_flag, constants, publish_all_items, unpublish_all_orphan_items

URL, REPO, WORK = sys.argv[1].rstrip("/"), Path(sys.argv[2]), Path(sys.argv[3])
TOKEN = "cicd-check"  # the emulator runs with --accept-any-token
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

# fabric-cicd only accepts https *.fabric.microsoft.com roots through its environment
# variables; the module attributes it reads at call time take any root.
constants.DEFAULT_API_ROOT_URL = URL
constants.FABRIC_API_ROOT_URL = URL


class EmulatorCredential:
    """A TokenCredential: `get_token` is all fabric-cicd calls."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(TOKEN, int(time.time()) + 3600)


# Every request fabric-cicd sends, to compare definitions with what it sent.
SENT = []
_request = requests.request


def _recording_request(method, url, **kwargs):
    SENT.append((method, url, kwargs.get("json")))
    return _request(method, url, **kwargs)


requests.request = _recording_request


def api(method, path, body=None, expect=(200, 201)):
    r = _request(method, f"{URL}/v1{path}", headers=HEADERS, json=body)
    if r.status_code == 202:
        op = r.headers["Location"]
        while True:
            resp = _request("GET", op, headers=HEADERS)
            st = resp.json()
            if st["status"] in ("Succeeded", "Failed"):
                break
            time.sleep(0.05)
        if st["status"] != "Succeeded":
            raise SystemExit(f"{method} {path}: operation {st}")
        result = resp.headers.get("Location")
        return _request("GET", result, headers=HEADERS).json() if result else None
    if r.status_code not in expect:
        raise SystemExit(f"{method} {path}: {r.status_code} {r.text}")
    return r.json() if r.text else None


def decode(part):
    return base64.b64decode(part["payload"])


def platform_view(part):
    p = json.loads(decode(part))
    m = p.get("metadata", {})
    return (m.get("type"), m.get("displayName"), m.get("description", ""), p["config"]["logicalId"])


def check_definitions(ws):
    """Every item's last definition sent equals its definition read back, part by part."""
    last = {}
    for method, url, body in SENT:
        if method != "POST" or not body or "definition" not in body or f"/workspaces/{ws}/" not in url:
            continue
        if url.endswith("/items"):
            items = api("GET", f"/workspaces/{ws}/items")["value"]
            item = next(i for i in items if i["type"] == body["type"] and i["displayName"] == body["displayName"])
            last[item["id"]] = body["definition"]
        elif "/updateDefinition" in url:
            last[url.split("/items/")[1].split("/")[0]] = body["definition"]
    compared = 0
    for item_id, sent in last.items():
        fmt = sent.get("format")
        got = api("POST", f"/workspaces/{ws}/items/{item_id}/getDefinition" + (f"?format={fmt}" if fmt else ""))
        got = {p["path"]: p for p in got["definition"]["parts"]}
        sent_parts = {p["path"]: p for p in sent["parts"]}
        if set(got) != set(sent_parts) | {".platform"}:
            raise SystemExit(f"item {item_id}: parts {sorted(got)} read back, {sorted(sent_parts)} sent")
        for path, p in sent_parts.items():
            if path == ".platform":
                # The service derives `.platform`: type, name, description and logical id must match.
                if platform_view(p) != platform_view(got[path]):
                    raise SystemExit(f"item {item_id}: .platform {platform_view(got[path])} != {platform_view(p)}")
            elif decode(p) != decode(got[path]):
                raise SystemExit(f"item {item_id}: part {path} differs from what was sent")
        compared += 1
    return compared


def run(env, capacity):
    ws = api("POST", "/workspaces", {"displayName": f"cicd-{env}", "capacityId": capacity})["id"]
    if env == "test":
        api("POST", f"/workspaces/{ws}/spark/pools", {
            "name": "SmallPool", "nodeFamily": "MemoryOptimized", "nodeSize": "Small",
            "autoScale": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3},
            "dynamicExecutorAllocation": {"enabled": False, "minExecutors": 1, "maxExecutors": 2},
        })
    SENT.clear()
    target = FabricWorkspace(workspace_id=ws, repository_directory=str(REPO), environment=env,
                             token_credential=EmulatorCredential())
    publish_all_items(target)
    deployed = api("GET", f"/workspaces/{ws}/items")["value"]
    compared = check_definitions(ws)
    publish_calls = len(SENT)

    # The variable library's value set, the shortcut and the environment's pool id.
    lib = next(i for i in deployed if i["type"] == "VariableLibrary")
    active = api("GET", f"/workspaces/{ws}/variableLibraries/{lib['id']}")["properties"]["activeValueSetName"]
    if active != env:
        raise SystemExit(f"{env}: active value set is {active}")
    silver = next(i for i in deployed if i["displayName"] == "Silver")
    bronze = next(i for i in deployed if i["displayName"] == "Bronze")
    shortcuts = api("GET", f"/workspaces/{ws}/items/{silver['id']}/shortcuts")["value"]
    if [s["target"]["oneLake"]["itemId"] for s in shortcuts] != [bronze["id"]]:
        raise SystemExit(f"{env}: shortcuts {shortcuts}")
    spark_env = next(i for i in deployed if i["type"] == "Environment")
    state = api("GET", f"/workspaces/{ws}/environments/{spark_env['id']}")["properties"]["publishDetails"]["state"]
    if state != "Success":
        raise SystemExit(f"{env}: environment publish state {state}")

    # Orphans: drop two items from a copy, publish it, unpublish what is no longer there.
    copy = WORK / f"repo-{env}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(REPO, copy)
    shutil.rmtree(copy / "notebooks" / "shared")
    shutil.rmtree(copy / "pipelines" / "Orchestrate.DataPipeline")
    SENT.clear()
    again = FabricWorkspace(workspace_id=ws, repository_directory=str(copy), environment=env,
                            token_credential=EmulatorCredential())
    publish_all_items(again)
    compared_again = check_definitions(ws)
    unpublish_all_orphan_items(again)
    left = {(i["type"], i["displayName"]) for i in api("GET", f"/workspaces/{ws}/items")["value"]}
    for gone in [("Notebook", "Utils"), ("DataPipeline", "Orchestrate")]:
        if gone in left:
            raise SystemExit(f"{env}: orphan {gone} was not unpublished")
    folders = {f["displayName"] for f in api("GET", f"/workspaces/{ws}/folders")["value"]}
    if "shared" in folders:
        raise SystemExit(f"{env}: the emptied folder 'shared' was not deleted")
    return {
        "environment": env,
        "workspace": ws,
        "items": len(deployed),
        "types": sorted({i["type"] for i in deployed}),
        "publishCalls": publish_calls,
        "definitionsCompared": compared,
        "definitionsComparedAfterRepublish": compared_again,
        "itemsAfterUnpublish": len(left),
        "foldersAfterUnpublish": sorted(folders),
    }


def main():
    append_feature_flag("enable_shortcut_publish")
    capacity = api("GET", "/capacities")["value"][0]["id"]
    results = [run(env, capacity) for env in ("test", "prod")]
    print(json.dumps({"fabricCicd": fabric_cicd.__version__ if hasattr(fabric_cicd, "__version__") else "1.4.0",
                      "runs": results}))


if __name__ == "__main__":
    main()
