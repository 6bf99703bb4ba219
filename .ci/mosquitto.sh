#!/usr/bin/env bash
# Installs (once) Debian's mosquitto, the MQTT broker the MQTT egress tests start themselves
# (tests/test_mqtt_egress.py, tests/test_mqtt_stock_feed.py) on 127.0.0.1 ports. Idempotent: does nothing
# when /usr/sbin/mosquitto is already there. The tests never use a system-wide broker service: on a machine
# where apt starts one on 1883, the stock-feed test picks a free port instead (see that test's docstring).
set -euo pipefail

if [ -x /usr/sbin/mosquitto ]; then
  echo "mosquitto: $(/usr/sbin/mosquitto -h 2>/dev/null | head -n 1)" >&2
  exit 0
fi
echo "mosquitto: installing Debian's mosquitto (apt)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
/usr/sbin/mosquitto -h 2>/dev/null | head -n 1 >&2 || true
[ -x /usr/sbin/mosquitto ]
