"""The TypeScript SDK over `llm-caller stdio`: every chatStream delta reaches the client's handler.

Both SDK generations dispatch a progress notification to its handler a microtask later,
but handle a response at once, dropping the call's progress handler; when the last
notification and the result arrive in one read, the last delta was lost (issue 13,
item 8). The check runs uat/stdio_progress_check.mjs with the pinned SDKs and the Node 22
that `make node-tools` installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from tests.integration.security_helpers import base_url
from uat.node_tools import UAT_DIR, tool_environment, tool_path

pytestmark = pytest.mark.integration

# `python -m` from the checkout (the node script starts it in its own folder), so the code
# under test is this tree's even where the venv's entry point belongs to another checkout.
COMMAND = [sys.executable, "-m", "cli.main", "stdio"]
SCRIPT = UAT_DIR / "stdio_progress_check.mjs"
RUNS = 100
_PACKAGES = {"v1": "sdk", "v2": "client"}  # under node_modules/@modelcontextprotocol


def _missing(sdk: str) -> str | None:
    package = UAT_DIR / "node_modules" / "@modelcontextprotocol" / _PACKAGES[sdk] / "package.json"
    if not package.is_file():
        return f"the TypeScript SDK ({package.parent.name}) is not in uat/node_modules; run `make node-tools`"
    if not tool_path("node").exists():
        return "Node 22 is not in uat/node_modules/.bin; run `make node-tools`"
    return None


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    # Unpaced chunks: the deltas come in a burst, so the last notifications and the result
    # leave close together, the case that lost deltas.
    with Sandbox(chunk_delay_s=0.0, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.mark.parametrize("sdk", ["v1", "v2"])
def test_the_typescript_sdk_gets_every_delta_over_stdio(box: Sandbox, sdk: str) -> None:
    reason = _missing(sdk)
    if reason is not None:
        pytest.skip(reason)
    env = tool_environment({"PATH": os.environ["PATH"], "LLMC_TOKEN": box.token,
                            "LLMC_GATEWAY_URL": base_url(box)})
    done = subprocess.run([str(tool_path("node")), str(SCRIPT), sdk, str(RUNS), *COMMAND],
                          env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])
    print(f"TypeScript SDK {sdk}: {summary['lost']} of {summary['runs']} calls lost a delta")
    assert summary == {"sdk": sdk, "runs": RUNS, "lost": 0, "short": []}
