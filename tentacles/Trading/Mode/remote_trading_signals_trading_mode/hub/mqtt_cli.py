"""`octobot-signals hub` MQTT flags: --mqtt-egress and --mosquitto-dir."""
from __future__ import annotations

import argparse
from pathlib import Path

from .mosquitto_config import PASSWORD_ENV
from .mqtt_egress import parse_broker_url
from .mqtt_runtime import MqttSettings


def add_mqtt_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mqtt-egress", metavar="mqtt://HOST:PORT", default=None,
        help="also publish every journaled message to this MQTT broker (topic t/<strategy id>, QoS 1), for "
        "stock OctoBot followers; the hub's listener of `octobot-signals mosquitto-config`. Password: "
        f"${PASSWORD_ENV}, else the one mosquitto-config stored in the hub's data",
    )
    parser.add_argument(
        "--mosquitto-dir", type=Path, default=None,
        help="folder written by `octobot-signals mosquitto-config`: the hub rewrites its followers' ACL when "
        "follower tokens change and reloads Mosquitto (SIGHUP via its pid file)",
    )


def mqtt_settings_from_args(args: argparse.Namespace) -> MqttSettings | None:
    """None when neither flag is given; ValueError naming the flag when one is unusable."""
    if args.mqtt_egress is None and args.mosquitto_dir is None:
        return None
    egress = parse_broker_url(args.mqtt_egress, "--mqtt-egress") if args.mqtt_egress is not None else None
    if args.mosquitto_dir is not None and not args.mosquitto_dir.is_dir():
        raise ValueError(f"--mosquitto-dir: {args.mosquitto_dir} is not a folder (run octobot-signals "
                         "mosquitto-config first)")
    return MqttSettings(egress=egress, mosquitto_dir=args.mosquitto_dir)
