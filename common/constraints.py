"""Swift's API limits, with Swift's defaults; the proxy enforces them and /info advertises them.

Clients (python-swiftclient among them) read these from /info, so names and meanings follow
Swift's `[swift-constraints]` exactly. `Constraints.from_parser` reads overrides from the
`[swift-constraints]` section of the cluster config (`from_config`: from that one section).
"""

from __future__ import annotations

import configparser
import dataclasses

from common.config import Config

SECTION = "swift-constraints"


@dataclasses.dataclass(frozen=True)
class Constraints:
    max_file_size: int = 5 * 1024**3 + 2            # largest single object, bytes
    max_meta_name_length: int = 128
    max_meta_value_length: int = 256
    max_meta_count: int = 90
    max_meta_overall_size: int = 4096
    max_header_size: int = 8192
    max_object_name_length: int = 1024
    container_listing_limit: int = 10000
    account_listing_limit: int = 10000
    max_account_name_length: int = 256
    max_container_name_length: int = 256
    extra_header_count: int = 0
    valid_api_versions: tuple[str, ...] = ("v1", "v1.0")

    @classmethod
    def from_config(cls, conf: Config) -> Constraints:
        values = {}
        for field in dataclasses.fields(cls):
            if field.name == "valid_api_versions":
                if field.name in conf:
                    values[field.name] = tuple(conf.get_list(field.name))
                continue
            values[field.name] = conf.get_int(field.name, field.default, minimum=0)
        return cls(**values)

    @classmethod
    def from_parser(cls, parser: configparser.ConfigParser, source: str) -> Constraints:
        """From the `[swift-constraints]` section of a parsed cluster config (all defaults
        when it has none); `source` names the file in errors."""
        values = dict(parser.items(SECTION)) if parser.has_section(SECTION) else {}
        return cls.from_config(Config(values, source, SECTION))

    def as_info(self) -> dict[str, object]:
        info: dict[str, object] = dataclasses.asdict(self)
        info["valid_api_versions"] = list(self.valid_api_versions)
        return info
