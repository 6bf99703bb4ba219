"""Publishing settings from OctoBot's web UI card and the environment (feed/publish_card.py, feed/publishing.py).

- the card's storage: secrets encrypted with octobot-commons' own fields_utils (as OctoBot stores exchange keys),
  the signing key field only masked, hand-edited clear values still read;
- resolution: card vs OCTOBOT_SIGNALS_* (each variable overrides its field), clear problems, no secret in any
  message or repr;
- the hub check: accepted, wrong secret, unknown strategy, unreachable;
- the mode hooks: a trading mode whose own config does not emit (as every stock mode) publishes its creates,
  edits and cancels to the card's strategy through octobot-trading's own chain and our outbox; backtests and
  following modes do not;
- nothing lost: with a wrong secret the bundles wait in the outbox, and reach the hub once the card is fixed.
The browser journey through the real web UI is tests/test_webui_publish_card.py.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import octobot_commons.authentication as authentication
import octobot_commons.configuration.fields_utils as fields_utils
import octobot_commons.signals as commons_signals
import octobot_commons.signals.signals_emitter as signals_emitter
import octobot_trading.modes as trading_modes
import octobot_trading.personal_data as personal_data
import pytest
from bridge_helpers import restored_authenticator
from hub_helpers import admin_create_follower, admin_create_strategy, auth, running_hub
from octobot_signals.feed import publish_card, publishing
from octobot_signals.feed.bridge import get_bridge, stop_bridge
from octobot_signals.feed.outbox import Outbox
from octobot_signals.simulator.sim_exchange import SimExchangeSpec, sim_exchange
from octobot_trading.enums import TraderOrderType

SYMBOL = "BTC/USDT"
SECRET = "ps_card_secret_value_1234567890"
SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Authenticator.instance() and AbstractTradingMode are process-global: put them back."""
    with restored_authenticator():
        yield
        publishing.disable()
        publishing.uninstall_hooks()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


def card_config(**fields: Any) -> dict[str, Any]:
    return {"profile": "default", "services": {publish_card.SERVICE_TYPE: fields}}


def full_card(hub_url: str = "http://127.0.0.1:9", **overrides: Any) -> dict[str, Any]:
    fields = {publish_card.KEY_HUB_URL: hub_url, publish_card.KEY_STRATEGY: "card-s",
              publish_card.KEY_SECRET: SECRET, publish_card.KEY_PUBLISH: True}
    fields.update(overrides)
    return fields


# ---------------------------------------------------------------------------------------------- the card


def test_the_card_fields_suit_octobots_web_ui() -> None:
    defaults = publish_card.default_card()
    assert tuple(defaults) == publish_card.CARD_KEYS
    assert set(publish_card.field_descriptions()) == set(defaults)  # every field has its tooltip
    assert all("_" not in key for key in defaults)  # the web UI splits posted keys on "_"
    assert "_" not in publish_card.SERVICE_TYPE
    assert publish_card.KEY_SECRET == "password"  # the one field the web UI masks
    assert defaults[publish_card.KEY_PUBLISH] is False  # nothing published before the user switches it on
    descriptions = publish_card.field_descriptions()
    assert "author page" in descriptions[publish_card.KEY_STRATEGY]
    assert "once" in descriptions[publish_card.KEY_SECRET]


def test_secure_card_encrypts_like_octobot_encrypts_exchange_keys() -> None:
    config = card_config(**full_card(**{publish_card.KEY_SIGNING_KEY: SIGNING_KEY}))
    assert publish_card.secure_card(config) is True
    stored = config["services"][publish_card.SERVICE_TYPE]
    assert fields_utils.decrypt(stored[publish_card.KEY_SECRET]) == SECRET
    assert stored[publish_card.KEY_SIGNING_KEY] == publish_card.MASK  # what the page shows
    assert fields_utils.decrypt(stored[publish_card.KEY_SIGNING_KEY_STORED]) == SIGNING_KEY
    assert SECRET not in json.dumps(config) and SIGNING_KEY not in json.dumps(config)
    before = json.dumps(config, sort_keys=True)
    assert publish_card.secure_card(config) is False and json.dumps(config, sort_keys=True) == before  # idempotent
    card = publish_card.read_card(config)
    assert card is not None and card.publish_secret == SECRET and card.signing_key == SIGNING_KEY
    # a new signing key typed in the page replaces the stored one; an emptied field forgets it
    stored[publish_card.KEY_SIGNING_KEY] = base64.b64encode(bytes(32)).decode()
    assert publish_card.secure_card(config)
    assert publish_card.read_card(config).signing_key == base64.b64encode(bytes(32)).decode()
    stored[publish_card.KEY_SIGNING_KEY] = ""
    assert publish_card.secure_card(config)
    assert publish_card.KEY_SIGNING_KEY_STORED not in stored and publish_card.read_card(config).signing_key == ""
    assert publish_card.secure_card({"services": {"telegram": {"password": "x"}}}) is False  # not ours: untouched
    assert publish_card.secure_card({}) is False


def test_read_card_defaults_and_hand_edited_values(tmp_path: Path) -> None:
    assert publish_card.read_card(None) is None and publish_card.read_card({"services": {}}) is None
    # the web UI writes only the fields a user edited: the others take their defaults
    card = publish_card.read_card(card_config(**{publish_card.KEY_HUB_URL: " http://h:1 "}))
    assert card == publish_card.Card(hub_url="http://h:1")
    # clear values written by hand work (and are encrypted at the next save)
    card = publish_card.read_card(card_config(**full_card(**{publish_card.KEY_SIGNING_KEY: SIGNING_KEY,
                                                             publish_card.KEY_PUBLISH: "true"})))
    assert card.publish_secret == SECRET and card.signing_key == SIGNING_KEY and card.publish is True
    assert SECRET not in repr(card) and SIGNING_KEY not in repr(card)
    # the mask alone (its encrypted value lost): a clear problem, not a crash
    broken = publish_card.read_card(card_config(**full_card(**{publish_card.KEY_SIGNING_KEY: publish_card.MASK,
                                                               publish_card.KEY_SIGNING_KEY_STORED: "garbage"})))
    assert broken.problem and "signing key" in broken.problem
    assert "signing key" in publish_card.resolve(broken, {}).problem
    path = tmp_path / "config.json"
    path.write_text(json.dumps(card_config(**full_card())))
    assert publish_card.load_user_config(path)["services"][publish_card.SERVICE_TYPE][publish_card.KEY_STRATEGY] == "card-s"
    assert publish_card.load_user_config(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert publish_card.load_user_config(tmp_path / "bad.json") is None


# ---------------------------------------------------------------------------------------------- resolution


def test_resolution_card_and_environment() -> None:
    card = publish_card.read_card(card_config(**full_card(**{publish_card.KEY_SIGNING_KEY: SIGNING_KEY})))
    settings = publish_card.resolve(card, {}).settings
    assert settings == publish_card.PublishSettings("http://127.0.0.1:9", "card-s", SECRET, SIGNING_KEY,
                                                    source=publish_card.CARD_NAME)
    assert settings.describe() == (f"publishing to http://127.0.0.1:9 strategy card-s (signed; settings from "
                                   f"{publish_card.CARD_NAME})")
    assert SECRET not in repr(settings) and SIGNING_KEY not in repr(settings)

    # each variable set overrides its field: the secret can stay out of user/config.json on a server
    env = {publish_card.ENV_PUBLISH_SECRET: "ps_from_env", publish_card.ENV_DATA_DIR: "/data/signals"}
    settings = publish_card.resolve(card, env).settings
    assert settings.publish_secret == "ps_from_env" and settings.hub_url == "http://127.0.0.1:9"
    assert settings.data_dir == "/data/signals"
    assert settings.source == f"{publish_card.CARD_NAME}, with {publish_card.ENV_PUBLISH_SECRET} from the environment"

    # the card's switch off: nothing, unless the environment alone names hub, strategy and secret
    off = publish_card.read_card(card_config(**full_card(**{publish_card.KEY_PUBLISH: False})))
    resolution = publish_card.resolve(off, {})
    assert resolution.settings is None and resolution.problem is None and "switched off" in resolution.note
    env = {publish_card.ENV_HUB_URL: "https://hub.example.org/", publish_card.ENV_PUBLISH_STRATEGY: "env-s",
           publish_card.ENV_PUBLISH_SECRET: "ps_env"}
    for base in (off, None):
        settings = publish_card.resolve(base, env).settings
        assert (settings.hub_url, settings.strategy_id, settings.publish_secret) == (
            "https://hub.example.org", "env-s", "ps_env")
        assert settings.source.startswith("the environment") and settings.signing_key is None
    assert publish_card.resolve(None, {}) == publish_card.Resolution()
    assert publish_card.resolve(None, {publish_card.ENV_HUB_URL: "http://h"}).settings is None  # incomplete


@pytest.mark.parametrize(("fields", "expected"), [
    ({publish_card.KEY_SECRET: ""}, "has no publish secret (password) (OCTOBOT_SIGNALS_PUBLISH_SECRET)"),
    ({publish_card.KEY_HUB_URL: "", publish_card.KEY_STRATEGY: ""},
     "has no hub URL (hub-url) (OCTOBOT_SIGNALS_HUB_URL), no strategy id"),
    ({publish_card.KEY_HUB_URL: "ftp://hub"}, "must start with http:// or https://"),
    ({publish_card.KEY_HUB_URL: "https://user:pw@hub"}, "must not contain credentials"),
    ({publish_card.KEY_HUB_URL: "https://hub/api"}, "without a path"),
    ({publish_card.KEY_STRATEGY: "my strategy"}, "strategy id"),
    ({publish_card.KEY_SIGNING_KEY: "not-a-key"}, "not a base64 Ed25519 private key"),
])
def test_resolution_problems_are_clear_and_hold_no_secret(fields: dict[str, Any], expected: str) -> None:
    card = publish_card.read_card(card_config(**full_card(**fields)))
    resolution = publish_card.resolve(card, {})
    assert resolution.settings is None and expected in resolution.problem, resolution.problem
    assert SECRET not in resolution.problem and "user:pw" not in resolution.problem


# ---------------------------------------------------------------------------------------------- the hub check


async def test_probe_says_what_the_hub_thinks(hub: Any) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "probe-s")
    ok = await publish_card.probe(publish_card.PublishSettings(hub.base_url, "probe-s", strategy["publish_secret"]))
    assert ok.ok and "accepts the publish secret for strategy probe-s" in ok.message
    wrong = await publish_card.probe(publish_card.PublishSettings(hub.base_url, "probe-s", "ps_wrong"))
    assert not wrong.ok and "refused the publish secret" in wrong.message and "HTTP 401" in wrong.message
    assert "wait in the outbox" in wrong.message and "ps_wrong" not in wrong.message
    unknown = await publish_card.probe(publish_card.PublishSettings(hub.base_url, "nope", strategy["publish_secret"]))
    assert not unknown.ok and "no strategy nope" in unknown.message and "HTTP 404" in unknown.message
    away = await publish_card.probe(publish_card.PublishSettings("http://127.0.0.1:9", "probe-s", "ps_x"), timeout=3)
    assert not away.ok and "unreachable" in away.message and "wait in the outbox" in away.message


# ---------------------------------------------------------------------------------------------- mode hooks


class StockLikeMode(trading_modes.AbstractTradingMode):
    """A trading mode as every stock one: its own config says nothing about emitting signals."""

    def get_mode_producer_classes(self) -> list:
        return []

    def get_mode_consumer_classes(self) -> list:
        return []


class FollowingMode(StockLikeMode):
    def is_following_trading_signals(self) -> bool:
        return True


class FakeExchangeManager:
    exchange_name = "fake"

    def __init__(self, backtesting: bool) -> None:
        self.is_backtesting = backtesting


def mode_of(cls: type, backtesting: bool = False, trading_config: dict | None = None) -> Any:
    mode = cls({}, FakeExchangeManager(backtesting))
    mode.trading_config = {} if trading_config is None else trading_config
    return mode


async def test_hooks_switch_emission_on_for_live_modes_only(tmp_path: Path) -> None:
    own = {"emit_trading_signals": True, "trading_strategy": "own-s"}
    assert not mode_of(StockLikeMode).should_emit_trading_signal()  # octobot-trading's own answer
    publishing.enable(publish_card.PublishSettings("http://127.0.0.1:9", "card-s", SECRET,
                                                   data_dir=str(tmp_path / "data")))
    try:
        live = mode_of(StockLikeMode)
        assert live.should_emit_trading_signal() and live.get_trading_signal_identifier() == "card-s"
        # the card names the strategy, whatever the mode's own setting says
        assert mode_of(StockLikeMode, trading_config=own).get_trading_signal_identifier() == "card-s"
        for quiet in (mode_of(StockLikeMode, backtesting=True), mode_of(FollowingMode)):
            assert not quiet.should_emit_trading_signal()
            assert quiet.get_trading_signal_identifier() == quiet.get_name()
        assert publishing.install_hooks() is False  # once
        publishing.disable()
        assert not mode_of(StockLikeMode).should_emit_trading_signal()  # back to the mode's own settings
        mode = mode_of(StockLikeMode, trading_config=own)
        assert mode.should_emit_trading_signal() and mode.get_trading_signal_identifier() == "own-s"
    finally:
        publishing.disable()
        await stop_bridge()
    publishing.uninstall_hooks()
    assert not getattr(trading_modes.AbstractTradingMode.should_emit_trading_signal, publishing.HOOK_MARK, False)


async def test_install_at_load_reads_the_card_and_logs_no_secret(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "config.json"
    config = card_config(**full_card(**{publish_card.KEY_SIGNING_KEY: SIGNING_KEY}))
    publish_card.secure_card(config)  # as the web UI saved it
    path.write_text(json.dumps(config))
    caplog.set_level(logging.INFO)
    try:
        resolution = publishing.install_at_load(path, {publish_card.ENV_DATA_DIR: str(tmp_path / "data")})
        assert resolution.settings is not None and publishing.active_settings() == resolution.settings
        bridge = get_bridge()
        assert bridge is not None and authentication.Authenticator.instance() is bridge
        assert bridge.publishes_on_hub("card-s") and bridge.follower is None
        assert "publishing to http://127.0.0.1:9 strategy card-s (signed;" in caplog.text
    finally:
        await stop_bridge()
    publishing.disable()
    caplog.clear()
    # a card asking to publish without a secret: a clear error, no bridge
    path.write_text(json.dumps(card_config(**full_card(**{publish_card.KEY_SECRET: ""}))))
    resolution = publishing.install_at_load(path, {})
    assert resolution.settings is None and get_bridge() is None
    assert publishing.active_problem() == resolution.problem
    assert "not publishing: publishing is on but" in caplog.text
    assert SECRET not in caplog.text and SIGNING_KEY not in caplog.text


async def _journal(hub: Any, strategy_id: str) -> list[dict[str, Any]]:
    token = (await admin_create_follower(hub.base_url, hub.admin_token, strategy_id))["token"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(f"{hub.base_url}/api/strategies/{strategy_id}/signals?after=0",
                               headers=auth(token)) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def test_a_stock_like_mode_publishes_creates_edits_and_cancels(hub: Any, tmp_path: Path) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "card-s")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(card_config(**full_card(hub.base_url, **{
        publish_card.KEY_SECRET: strategy["publish_secret"]}))))
    spec = SimExchangeSpec(portfolio={"BTC": Decimal(1), "USDT": Decimal(10000)}, prices={SYMBOL: Decimal(20000)})
    try:
        assert publishing.install_at_load(path, {publish_card.ENV_DATA_DIR: str(tmp_path / "data")}).settings
        async with sim_exchange(spec) as sim:
            em = sim.exchange_manager
            mode = StockLikeMode(em.config, em)
            mode.trading_config = {}  # no emit_trading_signals, no trading_strategy: a stock mode's config
            em.trading_modes.append(mode)
            em.is_backtesting = False  # the offline exchange is a backtesting one: publish as a live bot does
            try:
                assert publishing.publishes(mode)
                publishing.mode_started(mode)
                order = personal_data.create_order_instance(em.trader, TraderOrderType.BUY_LIMIT, SYMBOL,
                                                            Decimal(20000), Decimal("0.1"), price=Decimal(19000))
                async with mode.remote_signal_publisher(SYMBOL):
                    created = await mode.create_order(order)
                async with mode.remote_signal_publisher(SYMBOL):
                    # octobot-trading's edit signal needs every price argument (None fails in its builder)
                    assert await mode.edit_order(created, edited_price=Decimal(18500), edited_stop_price=Decimal(0),
                                                 edited_current_price=Decimal(20000))
                async with mode.remote_signal_publisher(SYMBOL):
                    cancelled, _ = await mode.cancel_order(created)
                assert cancelled
                assert await get_bridge().flush(15)
            finally:
                em.is_backtesting = True
                em.trading_modes.remove(mode)
        journal = await _journal(hub, "card-s")
        actions = [signal_["content"]["action"] for message in journal for signal_ in message["s"]["signals"]]
        assert actions == ["create", "edit", "cancel"], journal
        assert {message["s"]["identifier"] for message in journal} == {"card-s"}
    finally:
        await stop_bridge()


async def test_nothing_is_lost_while_the_card_is_wrong(hub: Any, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "card-s")
    path = tmp_path / "config.json"
    data = tmp_path / "data"
    data.mkdir()
    old = Outbox(data)
    old.enqueue("older-s", {"identifier": "older-s", "version": "1.0.0", "signals": []})  # another strategy's
    old.close()
    env = {publish_card.ENV_DATA_DIR: str(data)}
    caplog.set_level(logging.INFO)
    path.write_text(json.dumps(card_config(**full_card(hub.base_url, **{publish_card.KEY_SECRET: "ps_wrong"}))))
    try:
        settings = publishing.install_at_load(path, env).settings
        result = await publishing.start_and_check(settings)
        assert result is not None and not result.ok and "HTTP 401" in result.message
        assert "publishing problem" in caplog.text
        assert "1 signal bundle(s) queued for strategy older-s wait in the outbox" in caplog.text
        bundle = commons_signals.SignalBundle("card-s", signals=[commons_signals.Signal("orders", {
            "action": "create", "symbol": SYMBOL, "order_id": "o-1", "side": "buy", "type": "buy_limit",
            "quantity": 0.1, "target_amount": "5%", "limit_price": 19000.0, "exchange": "fake"})])
        await signals_emitter.emit_signal_bundle(bundle)
        assert not await get_bridge().flush(1)  # refused: it waits
        assert get_bridge().publisher.outbox.count_pending("card-s") == 1
    finally:
        await stop_bridge()
    publishing.disable()
    # the user fixes the secret and restarts OctoBot
    path.write_text(json.dumps(card_config(**full_card(hub.base_url, **{
        publish_card.KEY_SECRET: strategy["publish_secret"]}))))
    try:
        settings = publishing.install_at_load(path, env).settings
        result = await publishing.start_and_check(settings)
        assert result is not None and result.ok
        assert await get_bridge().flush(15)
        journal = await _journal(hub, "card-s")
        assert [message["s"]["signals"][0]["content"]["order_id"] for message in journal] == ["o-1"]
        # the other strategy's bundle was not sent to this one's stream: it still waits
        assert get_bridge().publisher.outbox.pending_by_strategy() == {"older-s": 1}
        assert "ps_wrong" not in caplog.text and strategy["publish_secret"] not in caplog.text
    finally:
        await stop_bridge()


async def test_the_hubs_author_page_gives_the_octobot_steps(hub: Any) -> None:
    """The steps on the author page name the card and its fields exactly as OctoBot's web UI shows them."""
    from test_hub_web import new_client, sign_up

    web = await new_client(hub)
    try:
        await sign_up(hub, web, "ada")
        status, text, _ = await web.post("/strategies/new", {
            "id": "ada-dca", "name": "Ada", "exchange": "binance", "pairs": "BTC/USDT", "visibility": "public",
            "exchange_type": "spot"}, csrf_from="/strategies/new")
        assert status == 200, text[:500]
    finally:
        await web.session.close()
    steps = re.search(r'<ol data-test="publish-steps">(.*?)</ol>', text, re.DOTALL).group(1)
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", steps))
    assert "Accounts → Interfaces" in html.unescape(plain)
    assert f"choose {publish_card.SERVICE_TYPE}" in plain
    for key in (publish_card.KEY_HUB_URL, publish_card.KEY_STRATEGY, publish_card.KEY_SECRET,
                publish_card.KEY_SIGNING_KEY, publish_card.KEY_PUBLISH):
        assert key in plain, key
    assert f"{publish_card.KEY_HUB_URL} {hub.base_url}" in plain and f"{publish_card.KEY_STRATEGY} ada-dca" in plain
    assert f"publishing to {hub.base_url} strategy ada-dca" in plain  # what the bot logs, see install_at_load
    assert "OCTOBOT_SIGNALS_PUBLISH_STRATEGY=ada-dca" in text  # the headless way stays, second
    assert text.index("publish-steps") < text.index("publish-env")
