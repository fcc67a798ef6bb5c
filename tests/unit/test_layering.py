"""The process boundary in the source tree: gateway/ and workers/ never import each other.

Each side meets the other only over the wire protocol; code both need lives in shared/,
which imports neither. A worker loading gateway code (or the reverse) would also drag
the other side's dependencies into its memory budget.

One exception, by design: provider-kind *declarations* (``workers/providers/registry.py``
and each ``workers/providers/<kind>/kind.py``) may be read by the gateway and by
``shared.config``, because a kind is one folder. Of the project they import nothing but
``shared`` (a kind's options model uses pydantic, as ``shared`` does), and importing them
loads no worker code (checked below).

The STDIO front end (``stdio_front/``) is a third process: it reaches the gateway only
over HTTP, as an MCP client, so it may import ``shared`` and nothing else of ours; what it
and the gateway must spell alike (the transport header, the tool-error shape) is in
``shared.front_contract``. Nothing of the gateway's, the workers' or shared imports it.

The test/demo harness (``harness/``) and the docs generators (``docgen/``) are not part of
any process the product runs: no product package imports them, except that the operator
CLI's ``try`` and ``demo`` commands run the sandbox (so ``cli/try_cmd.py`` and
``cli/stack_cmd.py`` may import ``harness``, and nothing in ``cli/`` imports ``docgen``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT

# harness/ (sandbox, demo) and docgen/ (the docs generators) are tooling, not product code.
_TOOLING = {"harness", "docgen"}
_FORBIDDEN = {"gateway": {"workers", "stdio_front", *_TOOLING}, "workers": {"gateway", "stdio_front", *_TOOLING},
              "shared": {"gateway", "workers", "cli", "stdio_front", *_TOOLING}, "emulators": _TOOLING}
# A package whose imports of our own code are listed, not excluded: anything else is a violation.
_ONLY = {"stdio_front": {"stdio_front", "shared"}}
_PROVIDERS = REPO_ROOT / "workers" / "providers"
# The declaration modules and the package inits Python runs on the way to them.
_DECLARATIONS = [REPO_ROOT / "workers" / "__init__.py", _PROVIDERS / "__init__.py", _PROVIDERS / "registry.py",
                 *sorted(_PROVIDERS.glob("*/kind.py")), *sorted(_PROVIDERS.glob("*/__init__.py"))]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_declaration(module: str) -> bool:
    """``workers.providers.registry[.X]`` or ``workers.providers.<kind>.kind[.X]``."""
    parts = module.split(".")
    return parts[:3] == ["workers", "providers", "registry"] or (
        parts[:2] == ["workers", "providers"] and len(parts) >= 4 and parts[3] == "kind")


def _offending(path: Path, forbidden: set[str]) -> list[str]:
    return sorted({m for m in _imports(path) if m.split(".")[0] in forbidden and not _is_declaration(m)})


@pytest.mark.parametrize("package", sorted(_FORBIDDEN))
def test_a_package_does_not_import_the_other_side(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): _offending(path, _FORBIDDEN[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_kind_declarations_import_only_shared() -> None:
    assert len(_DECLARATIONS) > 4
    offenders = {}
    for path in _DECLARATIONS:
        imported = {m.split(".")[0] for m in _imports(path) if not _is_declaration(m)}
        local = {m for m in imported if (REPO_ROOT / m).is_dir() or (REPO_ROOT / f"{m}.py").exists()}
        if local - {"shared"}:
            offenders[str(path.relative_to(REPO_ROOT))] = sorted(local - {"shared"})
    assert offenders == {}


def test_reading_kind_facts_loads_no_worker_code() -> None:
    code = ("import sys, shared.config, workers.providers.registry as r; assert r.KINDS; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'zmq', 'gateway') "
            "or (m.startswith('workers.') and m != 'workers.providers' and not m.startswith('workers.providers.'))"
            " or m.endswith(('.adapter', '.adapters', '.base', '.http_base', '.openai_compatible'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _our_packages(modules: set[str]) -> set[str]:
    """The top-level names in ``modules`` that are packages of this repository (not libraries)."""
    return {m.split(".")[0] for m in modules if (REPO_ROOT / m.split(".")[0] / "__init__.py").exists()}


@pytest.mark.parametrize("package", sorted(_ONLY))
def test_a_package_imports_only_what_it_may(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {str(path.relative_to(REPO_ROOT)): sorted(_our_packages(_imports(path)) - _ONLY[package])
                 for path in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_stdio_front_end_loads_no_gateway_or_worker_code() -> None:
    """Kind declarations aside (``shared.errors`` reads them), nothing of the other processes is loaded."""
    code = "import sys, stdio_front.front; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "stdio_front.front" in loaded
    other = {m for m in loaded if m.split(".")[0] in ("gateway", "workers", "cli", "zmq", "aiohttp")}
    inits = {"workers", "workers.providers", *(f"workers.providers.{kind.parent.name}"
                                               for kind in _PROVIDERS.glob("*/kind.py"))}
    declarations = {m for m in other if _is_declaration(m) or m in inits}
    assert sorted(other - declarations) == []


# The operator commands that run the sandbox: `llm-caller try` and `llm-caller demo`.
_HARNESS_COMMANDS = {"cli/try_cmd.py", "cli/stack_cmd.py"}


def test_the_operator_cli_imports_the_harness_only_for_try_and_demo() -> None:
    importers = {str(path.relative_to(REPO_ROOT)): sorted(_our_packages(_imports(path)) & _TOOLING)
                 for path in sorted((REPO_ROOT / "cli").rglob("*.py"))}
    importers = {k: v for k, v in importers.items() if v}
    assert {k: v for k, v in importers.items() if k not in _HARNESS_COMMANDS or v != ["harness"]} == {}
    assert set(importers) == _HARNESS_COMMANDS  # the rule names files that still need it


# HTTP client libraries, and which each shipped package may use (decision D57): provider calls
# go through aiohttp alone, in workers/http_client.py (the assistant's probe reuses it); httpx2
# comes with the MCP SDK and serves its client side; the CLI polls its own gateway with urllib;
# httpx is for tests and the benchmark only.
_HTTP_CLIENTS = ("aiohttp", "httpx", "httpx2", "requests", "urllib3", "urllib.request", "http.client")
_HTTP_ALLOWED = {"shared": set(), "gateway": set(), "workers": {"aiohttp"}, "cli": {"urllib.request"},
                 "stdio_front": {"httpx2"}, "harness": {"httpx2"}, "emulators": {"httpx2"}}
_PROVIDER_CLIENT = "workers/http_client.py"


def _http_clients(path: Path) -> set[str]:
    return {lib for lib in _HTTP_CLIENTS for m in _imports(path) if m == lib or m.startswith(f"{lib}.")}


def test_one_http_client_library_for_provider_calls() -> None:
    used = {str(path.relative_to(REPO_ROOT)): _http_clients(path)
            for package in _HTTP_ALLOWED for path in sorted((REPO_ROOT / package).rglob("*.py"))}
    assert {k: sorted(v - _HTTP_ALLOWED[k.split("/")[0]]) for k, v in used.items()
            if v - _HTTP_ALLOWED[k.split("/")[0]]} == {}
    assert sorted(k for k, v in used.items() if "aiohttp" in v) == [_PROVIDER_CLIENT]
