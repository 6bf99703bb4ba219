"""The Authenticator singleton is process-global: tests that install our bridge put back whatever was there."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import octobot_commons.authentication as authentication
import octobot_commons.singleton as singleton
from octobot_signals.feed.bridge import FeedAuthenticator, get_bridge


@contextlib.contextmanager
def restored_authenticator() -> Iterator[None]:
    instances = singleton.Singleton._instances
    saved = {key: instances.get(key) for key in (authentication.Authenticator, FeedAuthenticator)}
    yield
    assert get_bridge() is None, "test must call stop_bridge()"
    for key, value in saved.items():
        if value is None:
            instances.pop(key, None)
        else:
            instances[key] = value
