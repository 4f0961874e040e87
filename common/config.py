"""The one config loader: INI files with a [DEFAULT] section and one section per server.

Values are read through typed getters that name the option in their errors, so a bad config
stops a server at start with one clear line instead of failing later.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator, Mapping

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "t", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "f", "n", ""})


def is_true(value: object) -> bool:
    """Swift's `config_true_value`, for options and for headers alike: one of TRUE_WORDS, in
    any case, surrounding space ignored (None and anything else are false)."""
    return value is not None and str(value).strip().lower() in TRUE_WORDS


class ConfigError(ValueError):
    """A config file that is missing, unreadable, or holds a bad value."""


class Config(Mapping[str, str]):
    """One section of a config file (with [DEFAULT] folded in), read through typed getters."""

    def __init__(self, values: Mapping[str, str], source: str = "<config>",
                 section: str = ""):
        self._values = dict(values)
        self.source = source
        self.section = section

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def _where(self, key: str) -> str:
        return f"{self.source} [{self.section}] {key}"

    def get_str(self, key: str, default: str = "") -> str:
        return self._values.get(key, default).strip()

    def get_int(self, key: str, default: int, minimum: int | None = None) -> int:
        text = self._values.get(key)
        if text is None or not text.strip():
            return default
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(f"{self._where(key)}: not an integer: {text!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._where(key)}: must be >= {minimum}, not {value}")
        return value

    def get_float(self, key: str, default: float, minimum: float | None = None) -> float:
        text = self._values.get(key)
        if text is None or not text.strip():
            return default
        try:
            value = float(text.strip())
        except ValueError:
            raise ConfigError(f"{self._where(key)}: not a number: {text!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{self._where(key)}: must be >= {minimum}, not {value}")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        text = self._values.get(key)
        if text is None:
            return default
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{self._where(key)}: not a boolean: {text!r}")

    def get_list(self, key: str, default: tuple[str, ...] = ()) -> list[str]:
        text = self._values.get(key)
        if text is None:
            return list(default)
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


def read_config(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        found = parser.read(path)
    except configparser.Error as err:
        raise ConfigError(f"{path}: {err}") from None
    if not found:
        raise ConfigError(f"{path}: cannot read config file")
    return parser


def load_section(path: str, section: str) -> Config:
    """Section `section` of `path`, with [DEFAULT] values beneath it."""
    parser = read_config(path)
    if section != "DEFAULT" and not parser.has_section(section):
        raise ConfigError(f"{path}: no [{section}] section")
    values = dict(parser.defaults()) if section == "DEFAULT" else dict(parser.items(section))
    return Config(values, path, section)
