"""Swift API middlewares for the proxy pipeline, one module each.

- `subrequest`: the shared mechanism (internal requests to the next app, reading their
  answers). Every other module builds on it.
- `segments`: large-object bodies streamed segment by segment (shared by `slo` and `dlo`);
  the Range and precondition rules are `common.http_rules`, shared with the object server.
- `bulk`: bulk delete (`?bulk-delete`) and archive extraction (`?extract-archive=`).
- `copy`: server-side copy (COPY + Destination, PUT + X-Copy-From).
- `slo`: static large objects (`?multipart-manifest=put|get|delete`); `slo_manifest` holds
  its pure manifest rules.
- `dlo`: dynamic large objects (X-Object-Manifest).

Each module exposes `filter_factory(conf) -> Callable[[app], app]` and registers its /info
section when the proxy's `proxy.info` registry is importable. Swift's order in a pipeline:
`bulk copy slo dlo <proxy app>` (copy left of slo/dlo so a copied large object is read whole
and a copied manifest is validated; slo left of dlo as in Swift).

This file holds only the two helpers every `filter_factory` uses; it imports nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from common.config import Config


def as_config(conf: Mapping[str, str] | Config | None, section: str) -> Config:
    """The middleware's settings as a typed `Config`, whether given a dict or a Config."""
    if isinstance(conf, Config):
        return conf
    return Config({key: str(value) for key, value in (conf or {}).items()}, section=section)


def register_info(section: str, **values: object) -> bool:
    """Advertise `section` in /info if the proxy's registry exists; False when it does not.

    Imported lazily so a middleware can be built (and tested) without the proxy core.
    """
    try:
        from proxy.info import register_swift_info
    except ImportError:
        logging.getLogger("proxy.middleware").debug(
            "proxy.info not available; /info section %r not registered", section)
        return False
    register_swift_info(section, **values)
    return True
