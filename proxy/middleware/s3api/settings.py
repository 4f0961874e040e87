"""The S3 API's options, read once from the proxy's config (`[filter:s3api]` on top).

Option names follow Swift's s3api where it has one (`storage_domain`, `location`,
`max_bucket_listing`, `max_parts_listing`, `max_multi_delete_objects`, `max_upload_part_num`,
`min_segment_size`, `allowable_clock_skew`) so a Swift operator's config reads the same.
"""

from __future__ import annotations

import dataclasses

from common.config import Config

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class S3Settings:
    # Host names under which buckets are addressed virtual-host style (`bucket.<domain>`).
    storage_domains: tuple[str, ...] = ()
    # The region this endpoint is: SigV4 scopes must name it; GetBucketLocation answers it.
    location: str = "us-east-1"
    max_bucket_listing: int = 1000
    max_parts_listing: int = 1000
    max_multi_delete_objects: int = 1000
    max_upload_part_num: int = 10000
    min_segment_size: int = 5 * MIB
    allowable_clock_skew_s: int = 900
    max_presigned_expiry_s: int = 7 * 24 * 3600
    max_request_xml_bytes: int = 2 * MIB       # Delete/Complete bodies; S3 allows ~2 MB docs
    reseller_prefix: str = "AUTH_"
    swift_api_version: str = "v1"
    segments_suffix: str = "+segments"

    @classmethod
    def from_config(cls, conf: Config) -> S3Settings:
        prefix = conf.get_str("reseller_prefix", "AUTH")
        if prefix and not prefix.endswith("_"):
            prefix += "_"
        domains = tuple(domain.strip(".").lower() for domain in
                        conf.get_str("storage_domain", "").replace(",", " ").split())
        return cls(
            storage_domains=domains,
            location=conf.get_str("location", "us-east-1") or "us-east-1",
            max_bucket_listing=conf.get_int("max_bucket_listing", 1000, 1),
            max_parts_listing=conf.get_int("max_parts_listing", 1000, 1),
            max_multi_delete_objects=conf.get_int("max_multi_delete_objects", 1000, 1),
            max_upload_part_num=conf.get_int("max_upload_part_num", 10000, 1),
            min_segment_size=conf.get_int("min_segment_size", 5 * MIB, 0),
            allowable_clock_skew_s=conf.get_int("allowable_clock_skew", 900, 1),
            max_presigned_expiry_s=conf.get_int("max_presigned_expiry", 7 * 24 * 3600, 1),
            reseller_prefix=prefix,
        )
