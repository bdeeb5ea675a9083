"""Helpers shared by the xtask drivers that run fabric-cicd 1.4.0 against fabrik-emulator
(`cicd_crosscheck.py`, `publish_bench.py`): the emulator's API root, a credential, a small
REST client that follows long-running operations, and workspace set-up.

fabric-cicd only accepts https *.fabric.microsoft.com roots through its environment
variables; the module attributes it reads at call time take any root, so `point_at(url)`
sets them.
"""

import base64
import time

import requests
from azure.core.credentials import AccessToken

TOKEN = "cicd-xtask"  # the emulator runs with --accept-any-token
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class EmulatorCredential:
    """A TokenCredential: `get_token` is all fabric-cicd calls."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(TOKEN, int(time.time()) + 3600)


def point_at(url):
    """Makes fabric-cicd (imported by the caller) send its requests to `url`."""
    from fabric_cicd import constants

    constants.DEFAULT_API_ROOT_URL = url
    constants.FABRIC_API_ROOT_URL = url


class Api:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def call(self, method, path, body=None, expect=(200, 201)):
        """`path` is under /v1. Follows a 202 to its result; raises on any other status."""
        status, value = self.try_call(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {value}")
        return value

    def try_call(self, method, path, body=None):
        """(status, decoded body) of the call; a 202 is followed to its result (status 200)."""
        r = self.session.request(method, f"{self.url}/v1{path}", headers=HEADERS, json=body)
        if r.status_code == 202:
            op = r.headers["Location"]
            while True:
                resp = self.session.get(op, headers=HEADERS)
                st = resp.json()
                if st["status"] in ("Succeeded", "Failed"):
                    break
                time.sleep(0.02)
            if st["status"] != "Succeeded":
                raise RuntimeError(f"{method} {path}: operation {st}")
            result = resp.headers.get("Location")
            return 200, (self.session.get(result, headers=HEADERS).json() if result else None)
        try:
            value = r.json() if r.text else None
        except ValueError:
            value = r.text
        return r.status_code, value

    def list(self, path):
        """Every page of a list."""
        out, token = [], None
        while True:
            sep = "&" if "?" in path else "?"
            page = self.call("GET", path + (f"{sep}continuationToken={token}" if token else ""))
            out.extend(page.get("value", []))
            token = page.get("continuationToken")
            if not token:
                return out

    def admin(self, method, path):
        r = self.session.request(method, f"{self.url}/_emulator{path}")
        r.raise_for_status()
        return r.json() if r.text else None

    def capacity(self):
        return self.call("GET", "/capacities")["value"][0]["id"]

    def new_workspace(self, name, capacity, small_pool):
        """A workspace on `capacity`; with `small_pool`, the workspace Spark pool `SmallPool`
        the fixture's parameter.yml names for environment test."""
        ws = self.call("POST", "/workspaces", {"displayName": name, "capacityId": capacity})["id"]
        if small_pool:
            self.call("POST", f"/workspaces/{ws}/spark/pools", {
                "name": "SmallPool", "nodeFamily": "MemoryOptimized", "nodeSize": "Small",
                "autoScale": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3},
                "dynamicExecutorAllocation": {"enabled": False, "minExecutors": 1, "maxExecutors": 2},
            })
        return ws


def decode(payload):
    return base64.b64decode(payload)
