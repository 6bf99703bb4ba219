"""Publishing settings: the hub account card of OctoBot's web UI, and the environment variables.

The card is our Services tentacle (service/octobot_signals_service.py) as OctoBot's web UI shows it under
Accounts -> Interfaces: the web UI saves it in `user/config.json` under `"services": {"octobot-signals": {...}}`
(never in a profile, so never exported with one). Its keys (the web UI splits posted keys on `_`, so none
has one):

- `hub-url`, `strategy-id`: plain text;
- `password`: the strategy's publish secret. The web UI masks a field named exactly `password` on the page
  (its value is never rendered); we store it encrypted in place with octobot-commons' `fields_utils.encrypt`,
  exactly as OctoBot stores exchange API keys (`api-key`, `api-secret`);
- `signing-key`: the optional Ed25519 private key. The page would render any other field's value, so once
  saved the field holds only the mask `*********` and the key itself is kept encrypted (same function) under
  `signing-key-encrypted`, a key the page never shows;
- `publish`: the on/off switch (off by default: nothing is published until it is switched on).

secure_card() does that encryption; the service tentacle runs it whenever OctoBot saves its configuration.
A card edited by hand (clear values) still works and is encrypted at the next save.

The environment variables (OCTOBOT_SIGNALS_*) stay as the headless servers' way, and override the card
field by field: resolve() takes each set variable over the card's value, and publishes when the card's
switch is on or when the environment alone names a hub, a strategy and a secret.

Pure code (octobot-commons and aiohttp only): it runs in this project's venv and inside OctoBot.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ENV_HUB_URL = "OCTOBOT_SIGNALS_HUB_URL"
ENV_PUBLISH_SECRET = "OCTOBOT_SIGNALS_PUBLISH_SECRET"
ENV_PUBLISH_STRATEGY = "OCTOBOT_SIGNALS_PUBLISH_STRATEGY"
ENV_SIGNING_KEY = "OCTOBOT_SIGNALS_SIGNING_KEY"
ENV_DATA_DIR = "OCTOBOT_SIGNALS_DATA_DIR"
DEFAULT_DATA_DIR = os.path.join("user", "octobot_signals")  # relative to the bot's folder (its cwd)

SERVICE_TYPE = "octobot-signals"  # the card's name in the web UI and its key under "services"
SERVICES = "services"  # octobot_services.constants.CONFIG_CATEGORY_SERVICES
KEY_HUB_URL = "hub-url"
KEY_STRATEGY = "strategy-id"
KEY_SECRET = "password"  # the one name the web UI masks
KEY_SIGNING_KEY = "signing-key"
KEY_SIGNING_KEY_STORED = "signing-key-encrypted"  # not a card field: the page never renders it
KEY_PUBLISH = "publish"
MASK = "*********"  # what the web UI shows for `password`; what `signing-key` holds once stored
CARD_KEYS = (KEY_HUB_URL, KEY_STRATEGY, KEY_SECRET, KEY_SIGNING_KEY, KEY_PUBLISH)
_EMPTY = frozenset({"", MASK, "Empty", "NO KEY", "NOKEY", "your-api-key-here", "your-api-secret-here",
                    "your-api-password-here"})  # the web UI's and OctoBot's placeholder values


def default_card() -> dict[str, Any]:
    """The card as "Add a new interface" shows it (these types make the page's widgets: text, switch)."""
    return {KEY_HUB_URL: "", KEY_STRATEGY: "", KEY_SECRET: "", KEY_SIGNING_KEY: "", KEY_PUBLISH: False}


def field_descriptions() -> dict[str, str]:
    """The card's tooltips: what each field is and where the hub shows it."""
    return {
        KEY_HUB_URL: "Address of your strategy hub, as you open it in a browser: http(s)://host[:port], e.g. "
                     "https://hub.example.org. The hub's author page (your strategy's page, section 'Publish "
                     "to this strategy') shows it.",
        KEY_STRATEGY: "Id of the strategy to publish to (letters, digits, - and _). The hub shows it on the "
                      "strategy's author page and in its address: /strategies/<id>.",
        KEY_SECRET: "The strategy's publish secret (ps_...). The hub shows it only once, on the author page, "
                    "when you create the strategy or rotate its secret. Stored encrypted in user/config.json; "
                    "this page never shows it.",
        KEY_SIGNING_KEY: "Optional: your Ed25519 private key (base64), when the strategy has your public key on "
                         "the hub (its author page then says signatures are required). Empty: unsigned. Stored "
                         "encrypted in user/config.json; this page never shows it.",
        KEY_PUBLISH: "Publish the orders this bot's trading mode (any mode: DCA, Grid, Daily, TradingView...) "
                     "creates, edits and cancels to this strategy. Applies after a restart.",
    }


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _is_set(value: Any) -> bool:
    return _text(value) not in _EMPTY


def _fields_utils() -> Any:
    import octobot_commons.configuration.fields_utils as fields_utils

    return fields_utils


def encrypt(value: str) -> str:
    return _fields_utils().encrypt(value).decode()


def decrypt(value: str) -> str | None:
    """The clear text of an encrypted value, None when `value` is not one (a clear value typed by hand)."""
    import cryptography.fernet as fernet

    try:
        return _fields_utils().decrypt(value, silent_on_invalid_token=True)
    except (fernet.InvalidToken, ValueError, TypeError):
        return None


def secure_card(config: MutableMapping[str, Any]) -> bool:
    """Encrypt the card's secrets in a whole OctoBot config dict (in place); True when something changed.

    `password` becomes its encrypted form; a new `signing-key` moves, encrypted, to `signing-key-encrypted`
    and the field keeps the mask; an emptied `signing-key` forgets the stored key. Idempotent.
    """
    services = config.get(SERVICES)
    card = services.get(SERVICE_TYPE) if isinstance(services, Mapping) else None
    if not isinstance(card, MutableMapping):
        return False
    changed = False
    secret = card.get(KEY_SECRET)
    if _is_set(secret) and decrypt(_text(secret)) is None:
        card[KEY_SECRET] = encrypt(_text(secret))
        changed = True
    if KEY_SIGNING_KEY in card:
        signing_key = card[KEY_SIGNING_KEY]
        if _is_set(signing_key):
            card[KEY_SIGNING_KEY_STORED] = encrypt(_text(signing_key))
            card[KEY_SIGNING_KEY] = MASK
            changed = True
        elif _text(signing_key) != MASK and KEY_SIGNING_KEY_STORED in card:
            del card[KEY_SIGNING_KEY_STORED]  # the user emptied the field: no signing key any more
            changed = True
    return changed


@dataclass(frozen=True)
class Card:
    """The card's values, secrets in clear (in memory only)."""
    hub_url: str = ""
    strategy_id: str = ""
    publish_secret: str = field(default="", repr=False)
    signing_key: str = field(default="", repr=False)
    publish: bool = False
    problem: str | None = None  # a stored secret that cannot be read back


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return value is True


def read_card(config: Mapping[str, Any] | None) -> Card | None:
    """The card of an OctoBot config dict (user/config.json), or None when the bot has no card.

    Fields the web UI did not write (it writes only edited ones) take their defaults.
    """
    services = config.get(SERVICES) if isinstance(config, Mapping) else None
    raw = services.get(SERVICE_TYPE) if isinstance(services, Mapping) else None
    if not isinstance(raw, Mapping):
        return None
    problems = []
    secret = _text(raw.get(KEY_SECRET))
    if secret in _EMPTY:
        secret = ""
    elif (clear := decrypt(secret)) is not None:
        secret = clear
    signing_key = _text(raw.get(KEY_SIGNING_KEY))
    if signing_key in _EMPTY:  # the mask: the key is stored encrypted beside it
        signing_key = ""
        stored = _text(raw.get(KEY_SIGNING_KEY_STORED))
        if stored and _text(raw.get(KEY_SIGNING_KEY)) == MASK:
            signing_key = decrypt(stored) or ""
            if not signing_key:
                problems.append("the stored signing key cannot be decrypted: enter it again in the card")
    hub_url = _text(raw.get(KEY_HUB_URL))
    strategy_id = _text(raw.get(KEY_STRATEGY))
    return Card(hub_url="" if hub_url in _EMPTY else hub_url, strategy_id="" if strategy_id in _EMPTY else strategy_id,
                publish_secret=secret, signing_key=signing_key, publish=_bool(raw.get(KEY_PUBLISH)),
                problem="; ".join(problems) or None)


def load_user_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """OctoBot's user/config.json (relative to the bot's folder, its cwd), None when missing or unreadable."""
    if path is None:
        try:
            import octobot_commons.configuration as commons_configuration

            path = commons_configuration.get_user_config()
        except Exception:  # noqa: BLE001 - an older octobot-commons: OctoBot's own default location
            path = os.path.join("user", "config.json")
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


# ---------------------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class PublishSettings:
    hub_url: str
    strategy_id: str
    publish_secret: str = field(repr=False)
    signing_key: str | None = field(default=None, repr=False)
    data_dir: str = DEFAULT_DATA_DIR
    source: str = "card"

    def describe(self) -> str:
        """One log line, without any secret."""
        signed = "signed" if self.signing_key else "unsigned"
        return f"publishing to {self.hub_url} strategy {self.strategy_id} ({signed}; settings from {self.source})"


@dataclass(frozen=True)
class Resolution:
    settings: PublishSettings | None = None
    problem: str | None = None  # publishing is asked for but cannot run: why, and what to fix
    note: str | None = None  # nothing asked: why (e.g. the card's switch is off)


CARD_NAME = f"the '{SERVICE_TYPE}' card (Accounts > Interfaces)"
LABELS = {KEY_HUB_URL: "hub URL (hub-url)", KEY_STRATEGY: "strategy id (strategy-id)",
          KEY_SECRET: "publish secret (password)", KEY_SIGNING_KEY: "signing key (signing-key)"}


def check_hub_url(value: str) -> str:
    """http(s)://host[:port]; raises ValueError with a reason that never echoes the value."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials (the publish secret goes in its own field)")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be http(s)://host[:port], without a path")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def resolve(card: Card | None, environ: Mapping[str, str] | None = None) -> Resolution:
    """What this bot publishes: the card, each OCTOBOT_SIGNALS_* variable set overriding its field."""
    env = os.environ if environ is None else environ

    def from_env(name: str) -> str:
        return _text(env.get(name, ""))

    env_values = {name: from_env(name) for name in (ENV_HUB_URL, ENV_PUBLISH_STRATEGY, ENV_PUBLISH_SECRET,
                                                     ENV_SIGNING_KEY)}
    env_complete = all(env_values[name] for name in (ENV_HUB_URL, ENV_PUBLISH_STRATEGY, ENV_PUBLISH_SECRET))
    card_on = card is not None and card.publish
    if not (card_on or env_complete):
        note = f"{CARD_NAME} has publishing switched off: this bot publishes nothing" if card is not None else None
        return Resolution(note=note)
    base = card or Card()
    values = {
        ENV_HUB_URL: (env_values[ENV_HUB_URL] or base.hub_url, KEY_HUB_URL),
        ENV_PUBLISH_STRATEGY: (env_values[ENV_PUBLISH_STRATEGY] or base.strategy_id, KEY_STRATEGY),
        ENV_PUBLISH_SECRET: (env_values[ENV_PUBLISH_SECRET] or base.publish_secret, KEY_SECRET),
        ENV_SIGNING_KEY: (env_values[ENV_SIGNING_KEY] or base.signing_key, KEY_SIGNING_KEY),
    }
    from_environment = [name for name, value in env_values.items() if value]
    if card is None or not card_on:
        source = "the environment (" + ", ".join(from_environment) + ")"
    elif from_environment:
        source = f"{CARD_NAME}, with " + ", ".join(from_environment) + " from the environment"
    else:
        source = CARD_NAME
    where = CARD_NAME if card_on else "the environment"
    missing = [f"{LABELS[key]} ({name})" for name, (value, key) in values.items()
               if not value and name != ENV_SIGNING_KEY]
    if missing:
        return Resolution(problem=f"publishing is on but {where} has no " + ", no ".join(missing))
    if card_on and card.problem and not env_values[ENV_SIGNING_KEY]:
        return Resolution(problem=f"{CARD_NAME}: {card.problem}")
    try:
        hub_url = check_hub_url(values[ENV_HUB_URL][0])
    except ValueError as err:
        return Resolution(problem=f"the hub URL of {where} {err}")
    from ..core import protocol

    strategy_id = values[ENV_PUBLISH_STRATEGY][0]
    try:
        protocol.validate_strategy_id(strategy_id)
    except protocol.ProtocolError:
        return Resolution(problem=f"the strategy id of {where} must be 1-64 characters among A-Z a-z 0-9 - _")
    signing_key = values[ENV_SIGNING_KEY][0] or None
    if signing_key:
        try:
            protocol.load_private_key(signing_key)
        except (protocol.ProtocolError, ValueError):
            return Resolution(problem=f"the signing key of {where} is not a base64 Ed25519 private key (32 bytes)")
    return Resolution(settings=PublishSettings(
        hub_url=hub_url, strategy_id=strategy_id, publish_secret=values[ENV_PUBLISH_SECRET][0],
        signing_key=signing_key, data_dir=from_env(ENV_DATA_DIR) or DEFAULT_DATA_DIR, source=source))


# ---------------------------------------------------------------------------------------------- hub check


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str  # never holds the secret


async def probe(settings: PublishSettings, timeout: float = 10.0) -> ProbeResult:
    """Ask the hub whether the secret may publish to the strategy (the publisher's own first request)."""
    import asyncio

    import aiohttp

    url = f"{settings.hub_url}/api/v2/storefront/feeds/id/{settings.strategy_id}"
    waits = "signal bundles wait in the outbox and go out once this is fixed"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers={"Authorization": f"Bearer {settings.publish_secret}"}) as resp:
                status = resp.status
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
        return ProbeResult(False, f"hub {settings.hub_url} unreachable ({type(err).__name__}): {waits}")
    if status == 200:
        return ProbeResult(True, f"hub {settings.hub_url} accepts the publish secret for strategy "
                                 f"{settings.strategy_id}")
    reasons = {
        401: "the hub refused the publish secret: copy the strategy's current secret into the card (the hub "
             "shows it once, when the strategy is created or its secret rotated)",
        403: f"this publish secret may not publish to strategy {settings.strategy_id}: it belongs to another "
             "strategy, or the strategy is archived",
        404: f"the hub has no strategy {settings.strategy_id} (or it is private to someone else): check the "
             "strategy id on the hub's author page",
        429: "the hub blocks this address for a while after too many wrong secrets",
    }
    reason = reasons.get(status, f"the hub answered HTTP {status}")
    return ProbeResult(False, f"hub {settings.hub_url}: {reason} (HTTP {status}); {waits}")
