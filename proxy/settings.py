"""The proxy server's own options, read once from its config section into one typed record.

Every option is documented in etc/proxy-server.conf-sample; the defaults here are Swift's
unless that file says why they differ. Middleware options are read by each middleware.
"""

from __future__ import annotations

import dataclasses

from common.config import Config, ConfigError

DEFAULT_SWIFT_DIR = "/etc/ringstack"


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    swift_dir: str = DEFAULT_SWIFT_DIR
    conn_timeout_s: float = 0.5              # to open a connection to a storage node
    node_timeout_s: float = 10.0             # for a storage node's answer or a stalled write
    recoverable_node_timeout_s: float = 10.0  # a stalled object GET body (it can resume)
    client_chunk_bytes: int = 262144         # read from clients per chunk (at most)
    object_chunk_bytes: int = 65536          # read from storage nodes per chunk
    put_queue_depth: int = 10                # chunks buffered per object server on PUT
    error_suppression_interval_s: float = 60.0
    error_suppression_limit: int = 10
    request_node_count: str = "2 * replicas"  # nodes tried for a request, handoffs included
    sorting_method: str = "shuffle"          # order of primaries for reads: shuffle | none
    log_handoffs: bool = True
    verify_get_etag: bool = True             # MD5-check whole-object GETs as they stream
    allow_account_management: bool = True
    account_autocreate: bool = True
    max_containers_per_account: int = 0
    max_containers_whitelist: tuple[str, ...] = ()
    recheck_account_existence_s: float = 60.0     # Swift's defaults; see InfoCache
    recheck_container_existence_s: float = 60.0
    expose_info: bool = True
    disallowed_sections: tuple[str, ...] = ()
    expiring_objects_account: str = ".expiring_objects"
    expiring_objects_container_divisor: int = 86400
    swift_owner_headers: tuple[str, ...] = (
        "x-container-read", "x-container-write", "x-container-sync-key", "x-container-sync-to",
        "x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2",
        "x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2",
        "x-account-access-control")

    @classmethod
    def from_config(cls, conf: Config) -> ProxySettings:
        node_timeout = conf.get_float("node_timeout", cls.node_timeout_s, minimum=0.001)
        node_count = conf.get_str("request_node_count", cls.request_node_count)
        node_count_for(node_count, 3)  # fail at start on a bad value, not on the first request
        sorting = conf.get_str("sorting_method", cls.sorting_method).lower()
        if sorting not in ("shuffle", "none"):
            raise ConfigError(f"{conf.source} [{conf.section}] sorting_method: "
                              f"must be shuffle or none, not {sorting!r}")
        auto_prefix = conf.get_str("auto_create_account_prefix", ".")
        return cls(
            swift_dir=conf.get_str("swift_dir", DEFAULT_SWIFT_DIR),
            conn_timeout_s=conf.get_float("conn_timeout", cls.conn_timeout_s, minimum=0.001),
            node_timeout_s=node_timeout,
            recoverable_node_timeout_s=conf.get_float("recoverable_node_timeout", node_timeout,
                                                      minimum=0.001),
            client_chunk_bytes=conf.get_int("client_chunk_size", cls.client_chunk_bytes, 1),
            object_chunk_bytes=conf.get_int("object_chunk_size", cls.object_chunk_bytes, 1),
            put_queue_depth=conf.get_int("put_queue_depth", cls.put_queue_depth, 1),
            error_suppression_interval_s=conf.get_float(
                "error_suppression_interval", cls.error_suppression_interval_s, minimum=0),
            error_suppression_limit=conf.get_int("error_suppression_limit",
                                                 cls.error_suppression_limit, 1),
            request_node_count=node_count,
            sorting_method=sorting,
            log_handoffs=conf.get_bool("log_handoffs", cls.log_handoffs),
            verify_get_etag=conf.get_bool("verify_get_etag", cls.verify_get_etag),
            allow_account_management=conf.get_bool("allow_account_management",
                                                   cls.allow_account_management),
            account_autocreate=conf.get_bool("account_autocreate", cls.account_autocreate),
            max_containers_per_account=conf.get_int("max_containers_per_account", 0, 0),
            max_containers_whitelist=tuple(conf.get_list("max_containers_whitelist")),
            recheck_account_existence_s=conf.get_float("recheck_account_existence",
                                                       cls.recheck_account_existence_s, 0),
            recheck_container_existence_s=conf.get_float(
                "recheck_container_existence", cls.recheck_container_existence_s, 0),
            expose_info=conf.get_bool("expose_info", True),
            disallowed_sections=tuple(conf.get_list("disallowed_sections")),
            expiring_objects_account=auto_prefix + conf.get_str(
                "expiring_objects_account_name", "expiring_objects"),
            expiring_objects_container_divisor=conf.get_int(
                "expiring_objects_container_divisor", 86400, 1),
            swift_owner_headers=tuple(h.lower() for h in conf.get_list(
                "swift_owner_headers", cls.swift_owner_headers)),
        )


def node_count_for(setting: str, replicas: int) -> int:
    """`request_node_count` for a ring: an integer, or `N * replicas` as in Swift."""
    text = setting.replace(" ", "").lower()
    try:
        if text.endswith("*replicas"):
            return int(text[:-len("*replicas")]) * replicas
        return int(text)
    except ValueError:
        raise ConfigError(f"request_node_count: expected an integer or '<N> * replicas', "
                          f"not {setting!r}") from None
