"""The Dagster UI of one instance, for the UI test and the README screenshots.

``webserver(env)`` starts ``dagster-webserver`` (what ``dagster dev`` serves, without the
daemon) on a free port of 127.0.0.1 over the code location ``vae_pipeline.pipeline.definitions``
with the given environment (``DAGSTER_HOME`` = the instance, ``VAE_PIPELINE_*`` = the pipeline),
waits until it answers, and stops it on exit. ``graphql(url, query)`` asks the UI's own GraphQL
endpoint, the data every page of the UI is drawn from.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS_MODULE = "vae_pipeline.pipeline.definitions"

# What the UI's asset pages draw: each asset's catalog fields and its checks with their
# per-partition statuses (the Checks tab).
ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    description
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    tags { key value }
    opVersion
    isPartitioned
    dependencyKeys { path }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          blocking
          description
          partitionStatuses {
            ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
            ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions }
          }
        }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str, variables: Mapping | None = None, timeout: float = 60) -> dict:
    """``data`` of a GraphQL query against the webserver at ``url``; raises on errors."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        answer = json.load(resp)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def asset_nodes(url: str) -> dict[str, dict]:
    """Every asset node the UI shows, by asset name."""
    nodes = graphql(url, ASSET_NODES)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def pipeline_env(dagster_home: Path, variables: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``VAE_PIPELINE_*`` variables, plus
    ``DAGSTER_HOME`` and ``variables`` (the pipeline's, e.g. ``VAE_PIPELINE_DB``); no ``.env``
    is read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAE_PIPELINE_")}
    return {**env, "DAGSTER_HOME": str(dagster_home), "VAE_PIPELINE_ENV_FILE": os.devnull,
            **variables}  # fmt: skip


def lineage_url(url: str, groups: list[str]) -> str:
    """The global asset lineage with ``groups`` expanded (the UI collapses every group of a
    graph this size; its ``expanded`` query parameter names the open ones)."""
    return f"{url}/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups)


def dismiss_community_prompt(page) -> None:
    """Mark the UI's first-visit "Join the Dagster community" dialog as seen (it would cover
    a screenshot); the UI keeps that in the browser's local storage."""
    page.evaluate("window.localStorage.setItem('communityNux', '1')")


def _executable(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else name


@contextmanager
def webserver(env: Mapping[str, str], startup_s: float = 180) -> Iterator[str]:
    """``dagster-webserver`` on a free port with the environment ``env`` (the whole of it:
    see :func:`pipeline_env`); yields its base URL once the code location has loaded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="dagster-webserver-", suffix=".log", delete=False)
    command = [_executable("dagster-webserver"), "-m", DEFINITIONS_MODULE,
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"dagster-webserver exited: {Path(log.name).read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                    pass
                if asset_nodes(url):  # the code location loaded (its definitions import torch)
                    break
            except (urllib.error.URLError, ConnectionError, RuntimeError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"dagster-webserver did not answer in {startup_s:.0f} s: "
                    f"{Path(log.name).read_text()[-3000:]}"
                )
            time.sleep(1.0)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)
