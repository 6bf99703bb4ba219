"""The hub's MQTT side as one unit start_hub starts and stops: the egress, the Mosquitto ACL sync, and
`GET /api/mqtt`, where a follower token learns the MQTT username the hub issued for it."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

# _principal: the check every API route makes (failed-auth limiter per address, then the token); one
# copy of it, so that this route can never drift from the others again.
from .api_common import ApiError, _principal
from .mosquitto_config import PASSWORD_ENV, MosquittoAclSync, hub_password
from .mqtt_egress import TOPIC_PREFIX, BrokerAddress, EgressSettings, MqttEgress, NotifyingFanout
from .state import STATE_KEY, HubState

logger = logging.getLogger("octobot_signals.hub.mqtt")


@dataclass
class MqttSettings:
    egress: BrokerAddress | None = None  # where the hub publishes (the broker's hub listener)
    mosquitto_dir: Path | None = None  # keep this `mosquitto-config` folder's ACL in sync with tokens
    password: str | None = None  # default: $OCTOBOT_SIGNALS_MQTT_PASSWORD, else the one in the hub's store
    egress_tuning: dict[str, float] = field(default_factory=dict)  # EgressSettings overrides (tests)
    acl_interval_s: float = 1.0


@dataclass
class MqttRuntime:
    egress: MqttEgress | None
    acl_sync: MosquittoAclSync | None

    async def stop(self) -> None:
        # ACL sync first (it only writes files), then the egress, which saves its last position to the store.
        if self.acl_sync is not None:
            await self.acl_sync.stop()
        if self.egress is not None:
            await self.egress.stop()


async def start_mqtt(app: web.Application, state: HubState, settings: MqttSettings) -> MqttRuntime:
    """Before the site starts: the fan-out is replaced while no connection exists yet."""
    app.router.add_get("/api/mqtt", mqtt_username)
    egress: MqttEgress | None = None
    acl_sync: MosquittoAclSync | None = None
    if settings.mosquitto_dir is not None:
        acl_sync = MosquittoAclSync(state.store, settings.mosquitto_dir, settings.acl_interval_s)
        await acl_sync.start()
    if settings.egress is not None:
        password = settings.password or os.environ.get(PASSWORD_ENV) or await state.store.run(hub_password)
        egress = MqttEgress(
            state.store,
            strategy_ids=lambda: list(state.strategies),
            stream_id_of=lambda strategy_id: state.strategies[strategy_id].stream_id,
            settings=EgressSettings(broker=settings.egress, password=password,
                                    **settings.egress_tuning),  # type: ignore[arg-type]
        )
        state.fanout = NotifyingFanout(egress.notify)
        try:
            await egress.start()
        except BaseException:
            if acl_sync is not None:
                await acl_sync.stop()
            raise
    return MqttRuntime(egress, acl_sync)


async def mqtt_username(request: web.Request) -> web.Response:
    """Added endpoint: a follower token's MQTT username and the topics it may read (a stock OctoBot's
    `community.mqtt_uuid`). The token itself never goes to the broker."""
    state = request.app[STATE_KEY]
    principal = await _principal(request)  # 429 after too many failed auths, 401 counted as one
    if principal.kind != "follower" or principal.follower is None:
        raise ApiError(403, "forbidden", "only a follower token has an MQTT username")
    token_id = principal.follower.token_id
    username = await state.store.run(lambda db: db.mqtt_username(token_id))
    topics = sorted(TOPIC_PREFIX + s.id for s in state.followable(principal))
    return web.json_response({"username": username, "topics": topics})
