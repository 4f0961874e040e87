"""The S3 API as proxy middleware (Swift's s3api), one module per job:

- `middleware`: S3 or Swift request, authentication, routing, errors as S3 XML;
- `request`: bucket and key (path-style, virtual-host-style under `storage_domain`);
- `auth`: SigV4/SigV2 checks (header and presigned), time and expiry rules, body checks;
  `sigv4` and `sigv2` build the strings to sign, `chunked` decodes and checks aws-chunked
  bodies, `payload` checks a body's SHA-256 and checksums while it streams;
- `errors` (S3 error codes and statuses), `xml` (documents out, safe parsing in);
- `swift` (subrequests on the caller's account), `call` (one request being served);
- handlers: `service` (ListBuckets), `bucket`, `listing` (ListObjects v1/v2), `obj`,
  `multi_delete` (DeleteObjects), `multipart`.

`filter_factory(conf)` builds it; signatures are checked by the identity service through
`proxy.identity_client` (`identity_url` in the proxy's config).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from common.config import Config
from proxy.middleware import as_config, register_info
from proxy.middleware.s3api.middleware import S3ApiMiddleware
from proxy.middleware.s3api.settings import S3Settings
from proxy.middleware.subrequest import WsgiApp

LOGGER = logging.getLogger("ringstack.proxy.s3api")

__all__ = ["S3ApiMiddleware", "S3Settings", "filter_factory"]


def filter_factory(conf: Mapping[str, str] | Config | None = None) -> \
        Callable[[WsgiApp], Any]:
    """The S3 middleware from the proxy's config section (with `[filter:s3api]` on top)."""
    config = as_config(conf, "filter:s3api")
    settings = S3Settings.from_config(config)
    authenticator = None
    if config.get_str("identity_url"):
        from proxy.identity_client import identity_client
        authenticator = identity_client(config)
    else:
        LOGGER.warning("s3api: no identity_url configured; signed S3 requests will be refused")
    register_info("s3api", max_bucket_listing=settings.max_bucket_listing,
                  max_parts_listing=settings.max_parts_listing,
                  max_multi_delete_objects=settings.max_multi_delete_objects,
                  max_upload_part_num=settings.max_upload_part_num,
                  min_segment_size=settings.min_segment_size,
                  location=settings.location,
                  storage_domain=list(settings.storage_domains),
                  allow_multipart_uploads=True, s3_acl=False,
                  signature_versions=["v2", "v4"])

    def s3api_filter(app: WsgiApp) -> S3ApiMiddleware:
        return S3ApiMiddleware(app, settings, authenticator)
    return s3api_filter
