"""A tool is one declaration: the gateway's table over the shared names, read by everything else."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest

from cli.stack import REPO_ROOT
from gateway import mcp_server
from gateway.tool_table import INSTRUCTIONS, TABLE, TOOL_LIST
from shared.models import CAPABILITIES
from shared.tool_names import TOOL_NAMES, ToolGrant, describe_tools

# The registry: the one file that names the tools and the one that declares them.
_REGISTRY = {"shared/tool_names.py", "gateway/tool_table.py"}
# Product code and the harness; tests, docs, examples and the bench (a client measuring
# the tools it chooses) may name the tools they call.
_SCANNED = ("gateway", "shared", "stdio_front", "workers", "cli", "harness", "docgen", "uat")
# Where chat/chatStream/embed name a provider *capability* (or the worker op serving it),
# which shares its spelling with the tool: capability sets, routing, configuration.
_CAPABILITY_FILES = {
    "shared/models.py": "the Capability type",
    "shared/messages.py": "the worker ops (Op), spelled on the wire as today",
    "shared/config.py": "what each provider kind can do",
    "gateway/service.py": "routes by capability and calls the worker op",
    "cli/config_folder.py": "starter config: model capabilities and default routes",
    "harness/sandbox.py": "test config: model capabilities and default routes",
    "workers/": "adapters' capabilities and worker ops",
}


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _allowed(relative: str, name: str) -> bool:
    if relative in _REGISTRY:
        return True
    capability_file = any(relative == f or (f.endswith("/") and relative.startswith(f)) for f in _CAPABILITY_FILES)
    return capability_file and name in CAPABILITIES


def _literal_tool_names() -> list[str]:
    found = []
    for package in _SCANNED:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if "node_modules" in relative:
                continue
            found += [f"{relative}:{line}: {value!r}" for line, value in _string_constants(path)
                      if value in TOOL_NAMES and not _allowed(relative, value)]
    return found


def test_no_tool_name_is_spelled_outside_the_registry() -> None:
    assert _literal_tool_names() == [], "read the name from shared.tool_names (or gateway.tool_table)"


def test_the_scan_sees_a_literal_tool_name(tmp_path: Path) -> None:
    """The scan is not vacuous: a literal name in product code is reported."""
    probe = tmp_path / "probe.py"
    probe.write_text(f"await client.call_tool({TOOL_NAMES[-1]!r}, {{}})\n")
    assert [value for _, value in _string_constants(probe)] == [TOOL_NAMES[-1]]
    assert not _allowed("harness/demo.py", TOOL_NAMES[-1])


def test_the_table_declares_each_shared_name_in_order() -> None:
    assert tuple(TABLE) == TOOL_NAMES
    assert [tool.name for tool in TOOL_LIST] == list(TOOL_NAMES)
    assert set(mcp_server._BY_NAME) == set(TOOL_NAMES)


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_each_declaration_is_what_tools_list_shows(name: str) -> None:
    decl = TABLE[name]
    listed = next(tool for tool in TOOL_LIST if tool.name == name)
    assert listed.description == decl.description
    assert listed.input_schema == decl.input.model_json_schema()
    assert listed.annotations is not None
    assert listed.annotations.read_only_hint is (decl.capability is None and not decl.destructive)
    assert listed.annotations.destructive_hint is (True if decl.destructive else None)
    assert listed.annotations.open_world_hint is (decl.capability is not None)
    assert decl.capability is None or decl.capability in CAPABILITIES


def test_grants_and_instructions_come_from_the_names() -> None:
    assert get_args(ToolGrant) == ("*", *TOOL_NAMES)
    assert INSTRUCTIONS.startswith(describe_tools() + " ")
    assert describe_tools(("a", "b", "c")) == "a, b and c"
    assert describe_tools(("a",)) == "a"


def test_readme_tools_table_lists_every_tool_in_order() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Tools\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.MULTILINE)
    assert rows == list(TOOL_NAMES), "README.md's Tools table must have one row per tool, in registry order"
