"""The identity server: `ringstack-server identity CONF` serves app_factory(conf).

Opening the server creates what a fresh identity needs (the database, the default domain,
the Fernet and credential key repositories), so a first start works without a separate setup
step; administration (users, the catalog) is `ringstack-identity bootstrap` or the API.
"""

from __future__ import annotations

import logging

import eventlet.tpool

from common.config import Config
from identity.api.http import Services
from identity.api.router import IdentityApp
from identity.authentication import Authenticator
from identity.credentials import SecretSealer
from identity.keys import KeyRepository
from identity.settings import SECTION, IdentitySettings  # noqa: F401 (server_main reads it)
from identity.store import Store
from identity.tokens import TokenProvider

DEFAULT_PORT = 5000
LOGGER = logging.getLogger("ringstack.identity")


def open_services(settings: IdentitySettings, blocking_in_threads: bool = False) -> Services:
    """Everything one process needs, created on first use."""
    store = Store(settings.db_path)
    store.ensure_default_domain()
    token_keys = KeyRepository(settings.key_repository)
    credential_keys = KeyRepository(settings.credential_key_repository)
    for repository in (token_keys, credential_keys):
        if repository.setup():
            LOGGER.info("created key repository %s", repository.directory)
    provider = TokenProvider(token_keys, settings.token_expiration_s)
    blocking = eventlet.tpool.execute if blocking_in_threads else (lambda f, *a: f(*a))
    authenticator = Authenticator(store, provider, blocking,
                                  dummy_hash_cost=settings.password_hash_cost)
    return Services(settings, store, authenticator, SecretSealer(credential_keys))


def app_factory(conf: Config) -> IdentityApp:
    settings = IdentitySettings.from_config(conf)
    return IdentityApp(open_services(settings, blocking_in_threads=True))
