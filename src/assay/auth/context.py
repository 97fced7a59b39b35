"""What identity builds once per application: password hashing, token signing, the
keyring, the authenticator, the CSRF key and the mail dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from assay.auth.authenticator import Authenticator
from assay.auth.passwords import Passwords
from assay.auth.tokens import TokenSigner
from assay.core.cache import Cache
from assay.core.crypto import Keyring, derive_key
from assay.core.db import Database
from assay.core.key_providers import LocalKeyProvider
from assay.core.keyring_store import KeyringKeeper
from assay.core.mail import MailDispatcher, create_transport
from assay.settings import Settings


@dataclass
class IdentityContext:
    settings: Settings
    database: Database
    cache: Cache
    passwords: Passwords
    signer: TokenSigner
    keyring: Keyring
    # Loads the keyring from the data keys, and reloads it when they change: call
    # `await keeper.load()` before sealing anything (the app's lifespan and the CLI do).
    keeper: KeyringKeeper
    authenticator: Authenticator
    csrf_key: bytes
    mail: MailDispatcher

    @classmethod
    def build(cls, settings: Settings, database: Database, cache: Cache) -> IdentityContext:
        if settings.encryption_key is None or settings.session_secret is None:
            msg = "secrets missing; create_app fills them in development"
            raise RuntimeError(msg)
        signer = TokenSigner(settings)
        secret = settings.encryption_key.get_secret_value()
        keyring = Keyring.from_secret(secret)
        keeper = KeyringKeeper(settings, keyring, LocalKeyProvider(secret), database.sessionmaker)
        return cls(
            settings=settings,
            database=database,
            cache=cache,
            passwords=Passwords(settings),
            signer=signer,
            keyring=keyring,
            keeper=keeper,
            authenticator=Authenticator(settings, database.sessionmaker, cache, signer),
            csrf_key=derive_key(settings.session_secret.get_secret_value(), "assay csrf v1"),
            mail=MailDispatcher(settings, create_transport(settings)),
        )
