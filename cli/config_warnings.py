"""Configuration that loads but cannot work: the rules `config check`, `up` and `status` share.

A file that fails its model is refused by ``shared.config``; what is left for this module
is a configuration that is valid JSON of the right shape and still will not serve calls:

* a default route to a model the provider does not list, or to a kind that cannot do it
  (``cross_check``: problems refuse, warnings warn);
* a model listed with a capability its kind lacks;
* a ``base_url`` whose path the worker will double or miss (each kind declares the paths its
  worker appends, ``KindSpec.added_paths``), or plain ``http://`` carrying a key off this machine;
* a key that the worker will not find: the variable unset, the key file missing, empty,
  unreadable or open to others (the worker refuses such a file);
* a provider of a model-discovering kind with no models and discovery off;
* a kind's setting written where older files kept it (``KindSpec.moved_options``): it still
  loads, and the warning says where it lives now.

Each warning is one line naming the provider (by its path in providers.json) and the fix.
``up`` checks keys in the launcher's environment (what it will hand to the workers);
``status`` checks what the running stack was given (``RUN_DIR/secrets/<provider>``).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from shared.config import KIND_CAPABILITIES, ConfigError, ProviderConfig, ProvidersFile, load_providers
from shared.hosts import is_loopback
from shared.settings import Settings
from workers.providers.registry import KINDS

__all__ = ["config_warnings", "cross_check", "key_problem", "report_for_start", "unconfigured_reasons"]



def cross_check(config: ProvidersFile) -> tuple[list[str], list[str]]:
    """Problems and warnings the models cannot see alone: does each default route lead somewhere?"""
    problems: list[str] = []
    warnings: list[str] = []
    for capability, target in config.defaults.items():
        provider = config.providers[target.provider]  # the model already checked it exists
        where = f"defaults.{capability}"
        if capability not in KIND_CAPABILITIES[provider.kind]:
            problems.append(
                f"{where}.provider: a {provider.kind} provider cannot do {capability}; "
                f"fix: route {capability} to a provider that can"
            )
            continue
        listed = provider.models_for(capability)
        if target.model is None or target.model in listed:
            continue
        text = (
            f"{where}.model: {target.model!r} is not listed with {capability} under "
            f"providers.{target.provider}.models (listed: {', '.join(listed) or 'none'})"
        )
        spec = KINDS[provider.kind]
        if spec.discovers_models and provider.discover_models:
            # Such a server reports its loaded models at start-up, so the list may legitimately be short.
            warnings.append(f"{text}; it must be loaded in {spec.title} when calls arrive")
        else:
            problems.append(
                f'{text}; fix: add {{"id": "{target.model}", "capabilities": ["{capability}"]}} '
                "to that list, or name a listed model"
            )
    warnings.extend(_unusable_capabilities(config))
    return problems, warnings


def _unusable_capabilities(config: ProvidersFile) -> list[str]:
    # A warning, not an error: the gateway starts fine and refuses such calls clearly.
    found = []
    for name, provider in config.providers.items():
        for index, model in enumerate(provider.models):
            for capability in model.capabilities:
                if capability not in KIND_CAPABILITIES[provider.kind]:
                    found.append(
                        f"providers.{name}.models.{index}.capabilities: a {provider.kind} provider "
                        f"cannot do {capability}; calls will be refused"
                    )
    return found


# ---- base_url ---------------------------------------------------------------------------


def base_url_problem(name: str, provider: ProviderConfig) -> str | None:
    """Why the worker's requests to this base_url would miss, or None."""
    parts = urlsplit(provider.base_url)
    path = parts.path.rstrip("/")
    root = f"{parts.scheme}://{parts.netloc}"
    where = f"providers.{name}.base_url"
    spec = KINDS[provider.kind]
    for added in spec.added_paths:
        if not path.endswith(added):
            continue
        kept = provider.base_url[: len(provider.base_url) - len(added)] or root
        if spec.base_url_style == "version":
            return (f"{where}: {provider.base_url} ends in {added}, which the {spec.name} worker adds itself; "
                    f"fix: end it at the version path, e.g. {kept}")
        return (f"{where}: {provider.base_url} ends in {added}, but the {spec.name} worker adds "
                f"{spec.joins} itself (calls would go to {provider.base_url}"
                f"{spec.added_paths[0]}); fix: use {kept}")
    if spec.base_url_style == "version" and not path:
        version = urlsplit(spec.default_base_url).path
        return (f"{where}: {provider.base_url} has no path, but the {spec.name} worker calls "
                f"BASE_URL{spec.added_paths[0]} and {spec.title} (like most compatible servers) serves it under "
                f"{version}; fix: use {root}{version}")
    if provider.secret is not None and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        return (f"{where}: plain http:// to {parts.hostname} would send the {name} key unencrypted; "
                "fix: use https://")
    return None


# ---- keys -------------------------------------------------------------------------------


def key_problem(name: str, provider: ProviderConfig, environ: Mapping[str, str] | None = None,
                handed_off: Path | None = None) -> str | None:
    """Why the worker for ``name`` will find no key, or None.

    With ``environ``: judged as `up` would hand keys over. With ``handed_off`` (the running
    stack's RUN_DIR/secrets folder): judged by what the stack was given when it started.
    """
    secret = provider.secret
    if secret is None:
        return None
    where = f"providers.{name}.secret"
    if secret.env is not None:
        variable = secret.env
        if handed_off is not None:
            if _non_empty_file(handed_off / name):
                return None
            return (f"{where}: ${variable} was not set when the stack started, so the {name} worker has no key; "
                    f"fix: export {variable}=<key>, then `llm-caller down` and `llm-caller up`")
        if (environ if environ is not None else os.environ).get(variable, "").strip():
            return None
        return (f"{where}: ${variable} is not set, so the {name} worker will start without a key; "
                f"fix: export {variable}=<key> before `llm-caller up`")
    assert secret.file is not None
    return _key_file_problem(where, name, Path(secret.file).expanduser())


def _key_file_problem(where: str, name: str, path: Path) -> str | None:
    if not path.is_absolute():
        return (f"{where}.file: {path} is relative, and the {name} worker resolves it from its own folder; "
                "fix: give the absolute path")
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{where}.file: {path} does not exist; fix: write the key there (chmod 600) or correct the path"
    except OSError as exc:
        return f"{where}.file: {path} cannot be checked ({exc.strerror}); fix: check the folder's permissions"
    if not stat.S_ISREG(info.st_mode):
        return f"{where}.file: {path} is not a regular file; fix: point it at the file holding the key"
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{where}.file: {path} is open to others (mode {stat.S_IMODE(info.st_mode):04o}), so the {name} "
                f"worker refuses it; fix: chmod 600 {path}")
    if not os.access(path, os.R_OK):
        return f"{where}.file: {path} cannot be read by this user; fix: chown it to the user running the stack"
    if info.st_size == 0:
        return f"{where}.file: {path} is empty; fix: write the key into it"
    return None


def _non_empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _with_routes(config: ProvidersFile, name: str, text: str) -> str:
    routes = [f"defaults.{capability}" for capability, target in config.defaults.items() if target.provider == name]
    if not routes:
        return text
    head, _, fix = text.rpartition("; fix: ")
    return f"{head}; {', '.join(routes)} route there (such calls go to fallbacks or fail); fix: {fix}"


# ---- everything -------------------------------------------------------------------------


def config_warnings(config: ProvidersFile, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every warning for this configuration, keys judged against ``environ`` (default: os.environ)."""
    warnings = cross_check(config)[1]
    for name, provider in config.providers.items():
        url = base_url_problem(name, provider)
        if url is not None:
            warnings.append(url)
        key = key_problem(name, provider, environ)
        if key is not None:
            warnings.append(_with_routes(config, name, key))
        if KINDS[provider.kind].discovers_models and not provider.models and not provider.discover_models:
            warnings.append(f"providers.{name}.models: none listed and discover_models is false, so no call can "
                            "be routed to it; fix: list its models, or set discover_models to true")
        warnings.extend(_moved_key(name, old, new) for old, new in provider.moved_keys)
    return warnings


def _moved_key(name: str, old: str, new: str) -> str:
    return (f"providers.{name}.{old}: this setting moved to providers.{name}.options.{new} (read from the old "
            f'place for now); fix: write it as "options": {{"{new}": ...}} and remove {old}')


def unconfigured_reasons(settings: Settings) -> dict[str, str]:
    """Per provider of the running stack, why its worker has no key (judged by what `up` handed over)."""
    try:
        config = load_providers(settings.providers_file)
    except ConfigError:
        return {}
    reasons = {}
    for name, provider in config.providers.items():
        problem = key_problem(name, provider, handed_off=settings.secrets_dir)
        if problem is not None:
            reasons[name] = problem
    return reasons


def report_for_start(settings: Settings, *, strict: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Print `up`'s warnings to stderr; False when ``strict`` makes them fatal.

    A config that does not load is left to the start itself, which reports it in full.
    """
    try:
        config = load_providers(settings.providers_file)
    except ConfigError:
        return True
    warnings = config_warnings(config, environ)
    for warning in warnings:
        print(f"llm-caller: warning: {settings.providers_file}: {warning}", file=sys.stderr)
    if strict and warnings:
        print(f"llm-caller: not started: {len(warnings)} warning(s) and --strict; fix them, or start without "
              "--strict", file=sys.stderr)
        return False
    return True
