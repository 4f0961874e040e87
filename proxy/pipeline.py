"""Building the proxy's WSGI pipeline from the `pipeline` option: a registry of middleware names.

`pipeline = catch_errors gatekeeper healthcheck proxy-logging bulk tempauth copy slo dlo proxy`
lists filters left (outermost, sees the client's request first) to right, ending with the proxy
app. Each name maps to a module exposing `filter_factory(conf) -> (app -> app)`; a middleware
module elsewhere registers itself with `register_filter(name, "package.module")`, and a name
may also be a dotted module path. A name whose module does not exist is skipped with a
warning (the middleware may not be written yet); a name nobody registered is a config error,
since it is almost always a typo. Nothing is ever inserted that the operator did not list.

Each filter gets the proxy's config section with `[filter:<name>]` (if the config file has
one) layered on top, so options live where Swift operators expect them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any

from common.config import Config, ConfigError, read_config

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FilterFactory = Callable[[Config], Callable[[WsgiApp], WsgiApp]]

DEFAULT_PIPELINE = ("catch_errors gatekeeper healthcheck proxy-logging bulk tempauth "
                    "copy slo dlo proxy")
APP_NAMES = ("proxy", "proxy-server")

_FILTER_MODULES: dict[str, str] = {
    "catch_errors": "proxy.catch_errors",
    "gatekeeper": "proxy.gatekeeper",
    "healthcheck": "proxy.healthcheck",
    "proxy-logging": "proxy.proxy_logging",
    "proxy_logging": "proxy.proxy_logging",
    "tempauth": "proxy.auth",
    "bulk": "proxy.middleware.bulk",
    "slo": "proxy.middleware.slo",
    "dlo": "proxy.middleware.dlo",
    "copy": "proxy.middleware.copy",
    "keystoneauth": "proxy.keystone_auth",
    "tempurl": "proxy.middleware.tempurl",
    "account-quotas": "proxy.middleware.account_quotas",
    "container-quotas": "proxy.middleware.container_quotas",
    "s3api": "proxy.middleware.s3api",
}


def register_filter(name: str, module: str) -> None:
    """Make `name` usable in `pipeline`; `module` must expose `filter_factory(conf)`."""
    _FILTER_MODULES[name] = module


def registered_filters() -> dict[str, str]:
    return dict(_FILTER_MODULES)


def parse_pipeline(text: str) -> list[str]:
    names = text.replace(",", " ").split()
    if not names or names[-1] not in APP_NAMES:
        raise ConfigError(f"pipeline must end with the proxy app ({APP_NAMES[0]}), not "
                          f"{names[-1] if names else 'nothing'!r}")
    if any(name in APP_NAMES for name in names[:-1]):
        raise ConfigError("the proxy app can only be the last name of the pipeline")
    return names[:-1]


def filter_config(conf: Config, name: str) -> Config:
    """The proxy section with `[filter:<name>]` of the same file on top, if there is one."""
    section = f"filter:{name}"
    values = dict(conf)
    try:
        parser = read_config(conf.source)
    except ConfigError:
        return Config(values, conf.source, section)  # built in code, not from a file
    if parser.has_section(section):
        values.update(parser.items(section))
    return Config(values, conf.source, section)


def load_filter_factory(name: str, logger: logging.Logger) -> FilterFactory | None:
    module_name = _FILTER_MODULES.get(name)
    if module_name is None:
        if "." not in name:
            raise ConfigError(f"pipeline: unknown middleware {name!r} "
                              f"(known: {', '.join(sorted(_FILTER_MODULES))})")
        module_name = name
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            logger.warning("pipeline: skipping %s: module %s is not installed", name,
                           module_name)
            return None
        raise      # the module exists but one of its own imports is missing: a real error
    factory = getattr(module, "filter_factory", None)
    if factory is None:
        raise ConfigError(f"pipeline: {module_name} has no filter_factory")
    return factory


def build_pipeline(app: WsgiApp, conf: Config, names: list[str],
                   logger: logging.Logger) -> tuple[WsgiApp, list[str]]:
    """`app` wrapped in the named filters (rightmost innermost); also the names really used."""
    used = []
    factories = []
    for name in names:
        factory = load_filter_factory(name, logger)
        if factory is not None:
            factories.append((name, factory))
            used.append(name)
    for name, factory in reversed(factories):
        app = factory(filter_config(conf, name))(app)
    return app, used
