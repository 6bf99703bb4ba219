"""OctoBotSignalsService: the hub account card under Accounts -> Interfaces in OctoBot's web UI.

OctoBot lists every `AbstractService` subclass with a required config under "Add a new interface"; the card
shows get_default_value()'s fields with get_fields_description()'s tooltips and saves them in
user/config.json under "services" -> "octobot-signals" (see feed/publish_card.py for the fields and how
the secrets are stored). No OctoBot interface uses this service, so OctoBot never creates it: the mode
tentacle reads the card when OctoBot loads it (feed/publishing.py). A change applies after a restart.

Storage: importing this module wraps octobot-commons' `config_file_manager.encrypt_values_if_necessary`,
the function OctoBot runs on its whole configuration before every save to encrypt exchange keys, so that
the card's secrets are encrypted by the same save (publish_card.secure_card) and never reach the file or
the page in clear. The mode tentacle's code is imported lazily: OctoBot imports Services tentacles before
Trading ones.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any

import octobot_commons.logging as commons_logging
import octobot_services.enums as services_enums
import octobot_services.services as services

MODE_PACKAGE = "tentacles.Trading.Mode.remote_trading_signals_trading_mode"
SAVE_HOOK_MARK = "__octobot_signals_secure_card__"


SERVICE_TYPE = "octobot-signals"  # publish_card.SERVICE_TYPE, for when the mode tentacle cannot be imported


def _card() -> Any:
    return importlib.import_module(f"{MODE_PACKAGE}.feed.publish_card")


def _card_or_none() -> Any:
    """The card's module; None (logged) when the mode tentacle is broken: OctoBot's Accounts page must still
    render, without our card."""
    try:
        return _card()
    except Exception as err:  # noqa: BLE001
        commons_logging.get_logger("OctoBotSignalsService").error(
            f"the octobot-signals card is unavailable: the mode tentacle does not import ({err!r})")
        return None


def _publishing() -> Any:
    return importlib.import_module(f"{MODE_PACKAGE}.feed.publishing")


def install_save_hook() -> bool:
    """Encrypt the card's secrets whenever OctoBot encrypts exchange keys before a save; True when installed."""
    import octobot_commons.configuration.config_file_manager as config_file_manager

    current = config_file_manager.encrypt_values_if_necessary
    if getattr(current, SAVE_HOOK_MARK, False):
        return False

    @functools.wraps(current)
    def encrypt_values_if_necessary(config: Any) -> None:
        current(config)
        try:
            _card().secure_card(config)
        except Exception as err:  # noqa: BLE001 - never break OctoBot's save
            commons_logging.get_logger(OctoBotSignalsService.__name__).error(
                f"could not encrypt the octobot-signals card's secrets: {err!r}")

    setattr(encrypt_values_if_necessary, SAVE_HOOK_MARK, True)
    config_file_manager.encrypt_values_if_necessary = encrypt_values_if_necessary
    return True


def _secure_edited_config() -> None:
    """A card written by hand in user/config.json: encrypt it before the page renders it, and save."""
    try:
        import octobot_services.interfaces.util as interfaces_util

        edited = interfaces_util.get_edited_config(dict_only=False)
    except Exception:  # noqa: BLE001 - no running bot (tests, tools)
        return
    try:
        if edited is not None and _card().secure_card(edited.config):
            edited.save()
    except Exception as err:  # noqa: BLE001 - the page renders anyway (the field shows only the mask then)
        commons_logging.get_logger("OctoBotSignalsService").error(f"could not secure the card: {err!r}")


class OctoBotSignalsService(services.AbstractService):
    BACKTESTING_ENABLED = False

    def get_type(self) -> str:
        return SERVICE_TYPE

    def get_default_value(self) -> dict:
        # the card template reads this first, before it renders the stored values: a clear secret from a
        # hand-edited file is encrypted (and saved) now, so that the page never renders it
        _secure_edited_config()
        return _card().default_card()

    def get_fields_description(self) -> dict:
        return _card().field_descriptions()

    def get_required_config(self) -> list:
        card = _card_or_none()  # empty: OctoBot does not list the card (a broken install shows no half card)
        return [] if card is None else [card.KEY_HUB_URL, card.KEY_STRATEGY, card.KEY_SECRET]

    def get_read_only_info(self) -> list:
        """What the running bot does now (the card's values apply at the next start)."""
        publishing = _publishing()
        settings = publishing.active_settings()
        if settings is not None:
            value = f"to strategy {settings.strategy_id} on {settings.hub_url}"
        elif publishing.active_problem():
            value = f"off: {publishing.active_problem()}"
        else:
            value = "off"
        return [services.ReadOnlyInfo("Publishing now:", value, services_enums.ReadOnlyInfoType.READONLY)]

    @classmethod
    def get_help_page(cls) -> str:
        return ""

    def get_website_url(self) -> str:
        return ""  # no logo to fetch: the card shows none

    @staticmethod
    def is_setup_correctly(config: Any) -> bool:
        return _card().read_card(config) is not None

    @staticmethod
    def get_is_enabled(config: Any) -> bool:
        card = _card().read_card(config)
        return bool(card and card.publish)

    @staticmethod
    def get_should_warn() -> bool:
        return False

    def has_required_configuration(self) -> bool:
        resolution = _card().resolve(_card().read_card(self.config), {})
        return resolution.settings is not None

    def get_endpoint(self) -> None:
        return None

    async def prepare(self) -> None:
        pass  # nothing to connect: the mode tentacle's publisher talks to the hub

    def get_successful_startup_message(self) -> tuple[str, bool]:
        settings = _publishing().active_settings()
        return (settings.describe() if settings is not None else "", settings is not None)


install_save_hook()
