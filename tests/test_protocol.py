"""Pure unit tests of core/protocol.py (no sockets)."""
from __future__ import annotations

import json

import pytest
from octobot_signals.core import protocol as p

BUNDLE = {"identifier": "strat-1", "version": "1.0.0", "signals": [{"topic": "orders", "content": {"action": "create"}}]}


def publish_text(**data_overrides: object) -> str:
    data = {
        "topic": "t",
        "feed_id": "st_1",
        "version": "1.0.0",
        "value": json.dumps(BUNDLE),
        "u": "msg-1",
        "d": 1764000000.5,
        "g": None,
    }
    data.update(data_overrides)
    return json.dumps({"command": "message", "identifier": p.CHANNEL_IDENTIFIER, "data": json.dumps(data)})


# ----------------------------------------------------------------------------- frames byte-exact


def test_server_frames_are_byte_exact() -> None:
    assert p.ping_frame(1764000000) == '{"type":"ping","message":1764000000}'
    assert p.ping_frame(1764000000.9) == '{"type":"ping","message":1764000000}'
    assert p.welcome_frame() == '{"type":"welcome"}'
    assert p.confirm_subscription_frame() == (
        '{"type":"confirm_subscription","identifier":"{\\"channel\\":\\"Spree::MessageChannel\\"}"}'
    )
    assert p.reject_subscription_frame("x", "no") == '{"type":"reject_subscription","identifier":"x","message":"no"}'
    assert p.error_frame("bad") == '{"type":"error","message":"bad"}'
    assert p.ack_frame("u1", 7) == '{"type":"ack","u":"u1","q":7}'
    assert p.nack_frame("u1", "why") == '{"type":"nack","u":"u1","message":"why"}'
    msg = p.make_feed_message("u1", "st_1", 1.5, 3, BUNDLE, None)
    assert msg == {"u": "u1", "i": "st_1", "t": "t", "v": "1.0.0", "d": 1.5, "q": 3, "s": BUNDLE, "g": None}
    assert json.loads(p.delivery_frame(p.CHANNEL_IDENTIFIER, msg)) == {"identifier": p.CHANNEL_IDENTIFIER, "message": msg}


def test_ping_prefix_matches_stock_clients() -> None:
    assert p.ping_frame(1).startswith('{"type":"ping"')


def test_canonical_json() -> None:
    assert p.canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    with pytest.raises(ValueError):
        p.canonical_json({"a": float("nan")})
    assert p.signing_payload(5, "s", {"z": 1}, "u") == b'{"d":5,"i":"s","s":{"z":1},"u":"u"}'


# ----------------------------------------------------------------------------- versions and ids


@pytest.mark.parametrize(
    ("version", "ok"),
    [("1.0.0", True), ("1.9.12", True), ("1.0.10", True), ("0.9.9", False), ("2.0.0", False), ("1.0", False),
     ("1.0.0-beta", False), ("", False), (1, False), (None, False), ("01.0.0", True)],
)
def test_feed_version_bounds(version: object, ok: bool) -> None:
    assert p.is_supported_feed_version(version) is ok


@pytest.mark.parametrize("bad", ["", "a" * 65, "a b", "a/b", "é", None, 5, "../x"])
def test_strategy_id_rejects(bad: object) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.validate_strategy_id(bad)
    assert info.value.code == "bad_strategy_id"


def test_strategy_id_accepts() -> None:
    assert p.validate_strategy_id("A-z_0" * 12 + "abcd") == "A-z_0" * 12 + "abcd"


# ----------------------------------------------------------------------------- commands


def test_subscribe_round_trip() -> None:
    cmd = p.parse_client_command(p.build_subscribe_command(["a", "b"], {"a": 4}))
    assert cmd == p.SubscribeCommand(p.CHANNEL_IDENTIFIER, ("a", "b"), {"a": 4})
    plain = p.parse_client_command(p.build_subscribe_command())
    assert plain == p.SubscribeCommand(p.CHANNEL_IDENTIFIER, None, {})
    assert json.loads(p.build_subscribe_command()) == {"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER}


def test_publish_round_trip() -> None:
    text = p.build_publish_command("st_1", BUNDLE, "u-1", 12.25, "sig")
    cmd = p.parse_client_command(text)
    assert isinstance(cmd, p.PublishCommand)
    assert (cmd.feed_id, cmd.bundle, cmd.u, cmd.d, cmd.g, cmd.topic, cmd.version) == (
        "st_1", BUNDLE, "u-1", 12.25, "sig", "t", "1.0.0")
    data = json.loads(json.loads(text)["data"])
    assert isinstance(data["value"], str) and json.loads(data["value"]) == BUNDLE


@pytest.mark.parametrize(
    ("text", "code", "fatal"),
    [
        ("not json", "bad_frame", True),
        ("[1,2]", "bad_frame", True),
        ('"str"', "bad_frame", True),
        ('{"command":"subscribe"}', "bad_identifier", False),
        ('{"command":"subscribe","identifier":"{}"}', "bad_identifier", False),
        (json.dumps({"command": "dance", "identifier": p.CHANNEL_IDENTIFIER}), "unknown_command", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER, "data": "{bad"}), "bad_data", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER, "data": {"a": 1}}), "bad_data", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER,
                     "data": json.dumps({"strategies": ["bad id"]})}), "bad_strategy_id", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER,
                     "data": json.dumps({"resume": {"a": -1}})}), "bad_data", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER,
                     "data": json.dumps({"resume": {"a": True}})}), "bad_data", False),
        (json.dumps({"command": "subscribe", "identifier": p.CHANNEL_IDENTIFIER,
                     "data": json.dumps({"extra": 1})}), "bad_data", False),
        ("x" * (p.MAX_FRAME_BYTES + 1), "too_large", True),
    ],
)
def test_command_errors(text: str, code: str, fatal: bool) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_command(text)
    assert info.value.code == code
    assert info.value.fatal is fatal


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"topic": "x"}, "bad_topic"),
        ({"feed_id": ""}, "bad_feed_id"),
        ({"version": "2.0.0"}, "bad_version"),
        ({"d": "now"}, "bad_timestamp"),
        ({"d": True}, "bad_timestamp"),
        ({"g": 5}, "bad_signature"),
        ({"value": {"identifier": "x"}}, "bad_bundle"),
        ({"value": "{nope"}, "bad_bundle"),
        ({"value": json.dumps([1])}, "bad_bundle"),
        ({"value": json.dumps({**BUNDLE, "identifier": "bad id"})}, "bad_strategy_id"),
        ({"value": json.dumps({**BUNDLE, "version": "0.1.0"})}, "bad_version"),
        ({"value": json.dumps({**BUNDLE, "signals": {}})}, "bad_bundle"),
        ({"value": json.dumps({**BUNDLE, "signals": [1]})}, "bad_bundle"),
        ({"value": json.dumps({**BUNDLE, "signals": [{}] * 101})}, "too_many_signals"),
    ],
)
def test_publish_errors_carry_u_for_nack(overrides: dict, code: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_command(publish_text(**overrides))
    assert info.value.code == code
    assert info.value.u == "msg-1"
    assert not info.value.fatal


def test_non_finite_d_is_refused() -> None:
    # Python's json accepts NaN/Infinity tokens: the parser must still refuse them.
    text = publish_text().replace('\\"d\\": 1764000000.5', '\\"d\\": Infinity')
    assert "Infinity" in text
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_command(text)
    assert info.value.code == "bad_timestamp"


@pytest.mark.parametrize("u", ["", "x" * 129, None, 5])
def test_publish_bad_message_id(u: object) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_command(publish_text(u=u))
    assert info.value.code == "bad_message_id"
    assert info.value.u is None


def test_bundle_of_exactly_100_signals_is_accepted() -> None:
    cmd = p.parse_client_command(publish_text(value=json.dumps({**BUNDLE, "signals": [{}] * 100})))
    assert len(cmd.bundle["signals"]) == 100


# ----------------------------------------------------------------------------- signatures


def test_sign_verify_round_trip_and_forgeries() -> None:
    private, public = p.generate_keypair()
    other_private, _ = p.generate_keypair()
    g = p.sign_message(private, 1764000000.123, "strat-1", BUNDLE, "u1")
    assert p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u1", g)
    # Every covered field matters.
    assert not p.verify_message(public, 1764000000.124, "strat-1", BUNDLE, "u1", g)
    assert not p.verify_message(public, 1764000000.123, "strat-2", BUNDLE, "u1", g)
    assert not p.verify_message(public, 1764000000.123, "strat-1", {**BUNDLE, "signals": []}, "u1", g)
    assert not p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u2", g)
    # Unsigned, garbage, wrong key.
    assert not p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u1", None)
    assert not p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u1", "!!notbase64")
    assert not p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u1", "AAAA")
    forged = p.sign_message(other_private, 1764000000.123, "strat-1", BUNDLE, "u1")
    assert not p.verify_message(public, 1764000000.123, "strat-1", BUNDLE, "u1", forged)


def test_signature_is_independent_of_key_order() -> None:
    private, public = p.generate_keypair()
    reordered = {"version": "1.0.0", "signals": BUNDLE["signals"], "identifier": "strat-1"}
    g = p.sign_message(private, 5, "strat-1", BUNDLE, "u")
    assert p.verify_message(public, 5, "strat-1", reordered, "u", g)


def test_keys_are_raw_32_bytes() -> None:
    import base64

    private, public = p.generate_keypair()
    assert len(base64.b64decode(private)) == 32 and len(base64.b64decode(public)) == 32
    assert p.validate_public_key(public) == public
    for bad in ["AAAA", "not base64!", 12]:
        with pytest.raises(p.ProtocolError):
            p.validate_public_key(bad)


# ----------------------------------------------------------------------------- server frames and feed messages


def test_parse_server_frames() -> None:
    msg = p.make_feed_message("u1", "st", 1, 1, BUNDLE, None)
    assert p.parse_server_frame(p.welcome_frame()) == p.Welcome()
    assert p.parse_server_frame(p.ping_frame(9)) == p.Ping(9)
    assert p.parse_server_frame(p.confirm_subscription_frame()) == p.Confirm(p.CHANNEL_IDENTIFIER)
    assert p.parse_server_frame(p.reject_subscription_frame("i", "r")) == p.Reject("i", "r")
    assert p.parse_server_frame(p.delivery_frame("i", msg)) == p.Delivery("i", msg)
    assert p.parse_server_frame(p.error_frame("e")) == p.Error("e")
    assert p.parse_server_frame(p.ack_frame("u", 3)) == p.Ack("u", 3)
    assert p.parse_server_frame(p.nack_frame("u", "m")) == p.Nack("u", "m")
    for bad in ["{", "[]", '{"type":"zzz"}', '{"type":"ack","u":"u","q":0}', '{"type":"ping","message":"x"}']:
        with pytest.raises(p.ProtocolError):
            p.parse_server_frame(bad)


def test_parse_feed_message() -> None:
    private, public = p.generate_keypair()
    g = p.sign_message(private, 7, "strat-1", BUNDLE, "u1")
    msg = p.parse_feed_message(p.make_feed_message("u1", "st_x", 7, 2, BUNDLE, g))
    assert msg.strategy_id == "strat-1" and msg.q == 2
    assert msg.verify(public)
    assert msg.to_dict()["i"] == "st_x"
    tampered = p.parse_feed_message(p.make_feed_message("u1", "st_x", 8, 2, BUNDLE, g))
    assert not tampered.verify(public)
    good = p.make_feed_message("u1", "st", 1, 1, BUNDLE, None)
    for key, value, code in [("q", 0, "bad_sequence"), ("v", "3.0.0", "bad_version"), ("t", "x", "bad_message"),
                             ("d", None, "bad_timestamp"), ("s", [], "bad_bundle"), ("g", 4, "bad_signature")]:
        with pytest.raises(p.ProtocolError) as info:
            p.parse_feed_message({**good, key: value})
        assert info.value.code == code, key


# ----------------------------------------------------------------------------- sequence rules


def test_sequence_tracker() -> None:
    tracker = p.SequenceTracker()
    assert tracker.classify(1) == "apply"
    assert tracker.classify(2) == "gap"
    tracker.applied(1)
    assert tracker.classify(1) == "duplicate"
    assert tracker.classify(2) == "apply"
    assert tracker.classify(5) == "gap"
    tracker.applied(5)
    assert tracker.last_applied == 5
    tracker.applied(3)  # never moves backwards
    assert tracker.last_applied == 5
    assert p.SequenceTracker(41).classify(42) == "apply"
    with pytest.raises(ValueError):
        p.SequenceTracker(-1)


def test_recent_ids_is_bounded_lru() -> None:
    ids = p.RecentIds(capacity=3)
    assert ids.add("a") and ids.add("b") and ids.add("c")
    assert not ids.add("a")  # known, and refreshed
    assert ids.add("d")  # evicts b, the least recent
    assert "b" not in ids and "a" in ids and len(ids) == 3


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_number_inside_bundle_is_refused(number: str) -> None:
    value = json.dumps(BUNDLE).replace('"create"}', '"create", "limit_price": ' + number + "}")
    assert number in value
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_command(publish_text(value=value))
    assert info.value.code == "bad_bundle" and info.value.u == "msg-1"
