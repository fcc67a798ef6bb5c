"""`llm-caller try`: its argument checks and the setups it prints (the live stack: integration/test_try.py)."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from cli.try_cmd import client_setups


@pytest.mark.parametrize(("port", "why"), [("99999", "1-65535"), ("0", "1-65535"), ("x", "not a port number")])
def test_a_bad_port_is_refused_in_one_line(port: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["try", "--port", port])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert why in error and "Traceback" not in error


def test_the_three_setups_carry_the_same_endpoint_and_token() -> None:
    url, token, gateway = "http://127.0.0.1:18001/mcp", "llmc_example", "http://127.0.0.1:18001"
    setups = client_setups(url, token, gateway)
    assert setups["claude"] == ('claude mcp add --transport http llm-caller http://127.0.0.1:18001/mcp '
                                '--header "Authorization: Bearer llmc_example"')
    http = json.loads(json.dumps(setups["http"]))["mcpServers"]["llm-caller"]
    assert http == {"type": "http", "url": url, "headers": {"Authorization": "Bearer llmc_example"}}
    stdio = setups["stdio"]["mcpServers"]["llm-caller"]
    assert stdio["args"][-1] == "stdio"
    assert stdio["env"] == {"LLMC_TOKEN": token, "LLMC_GATEWAY_URL": gateway}
