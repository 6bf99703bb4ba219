"""Sans-I/O core of the strategy feed protocol (see shared/PROTOCOL.md).

Pure functions and small classes only: no sockets, no asyncio. The hub, the follower
client and the publisher client all build and parse frames through this module so the
wire format lives in exactly one place.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from .performance import PerformanceCommand

# 2: 1 + optional fields: storefront last_q, byte-bounded history pages (X-Next-After), hub web API
# 3: 2 + performance snapshots (publish topic "p", never journaled) and GET /api/strategies/{id}/performance
PROTOCOL_VERSION = 3
FEED_VERSION = "1.0.0"
WS_PATH = "/cable"
CHANNEL_NAME = "Spree::MessageChannel"
CHANNEL_IDENTIFIER = '{"channel":"Spree::MessageChannel"}'
MAX_IDENTIFIER_CHARS = 1024
CHANNEL_TYPE_SIGNALS = "t"
TOPIC_PERFORMANCE = "p"  # a performance snapshot (core/performance.py): acked, stored, never journaled
MAX_FRAME_BYTES = 256 * 1024
MAX_SIGNALS = 100
MAX_MESSAGE_ID_CHARS = 128
PING_INTERVAL_S = 3
STALE_AFTER_S = 30
DEFAULT_HISTORY_LIMIT = 500
MAX_HISTORY_LIMIT = 5000
STRATEGY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The largest sequence number anywhere (q, resume, after=): far beyond any journal, and within the 64-bit
# integers SQLite and PostgreSQL store (a larger q would fail in the store, not in validation).
MAX_SEQUENCE = 2**62

# WebSocket close codes used by the hub.
CLOSE_POLICY_VIOLATION = 1008  # unparseable frame
CLOSE_TOO_LARGE = 1009  # frame over MAX_FRAME_BYTES
CLOSE_TRY_AGAIN_LATER = 1013  # follower too slow: its queue overflowed, it must resume


class ProtocolError(ValueError):
    """A frame or field that breaks the protocol.

    `code` is a short machine-readable reason; `fatal` means the frame could not be
    understood at all (the hub closes the connection); `u` is the message id when it was
    readable, so a refused publish can be nacked.
    """

    def __init__(self, code: str, message: str, *, fatal: bool = False, u: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal
        self.u = u

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# ----------------------------------------------------------------------------- validation helpers


def validate_strategy_id(value: Any, field_name: str = "strategy id") -> str:
    if not isinstance(value, str) or not STRATEGY_ID_RE.fullmatch(value):
        raise ProtocolError("bad_strategy_id", f"{field_name} must be 1-64 chars of [A-Za-z0-9_-]")
    return value


def _parse_version(v: str) -> tuple[int, int, int] | None:
    parts = v.split(".")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def is_supported_feed_version(v: Any) -> bool:
    """1.0.0 <= v < 2.0.0."""
    if not isinstance(v, str):
        return False
    parsed = _parse_version(v)
    return parsed is not None and (1, 0, 0) <= parsed < (2, 0, 0)


def number_problem(value: Any) -> str | None:
    """Why `value` is not an acceptable JSON number, or None when it is one. Never raises.

    The one check every number of the protocol goes through. Python's json reads integers of any length
    (up to 4300 digits) and 1e999 as inf: an integer beyond a float's range makes math.isfinite and float()
    raise OverflowError, which would escape the callers' ProtocolError handling.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    # int <= float compares exactly, without converting the int (no OverflowError)
    if -sys.float_info.max <= value <= sys.float_info.max:
        return None
    return f"must be within a float's range, not an integer of {value.bit_length()} bits"


def is_finite_number(value: Any) -> bool:
    return number_problem(value) is None


def json_number(value: Any, field_name: str, code: str = "bad_number", hint: str = "") -> int | float:
    """`value` if it is a finite JSON number within a float's range, else a ProtocolError naming the field."""
    problem = number_problem(value)
    if problem is not None:
        raise ProtocolError(code, f"{field_name} {problem}{hint}")
    return value


def json_integer(value: Any, field_name: str, low: int, high: int, code: str = "bad_number") -> int:
    """`value` if it is an integer in [low, high] (booleans refused), else a ProtocolError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(code, f"{field_name} must be an integer in [{low}, {high}]")
    return value


def validate_message_id(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_MESSAGE_ID_CHARS:
        raise ProtocolError("bad_message_id", f"u must be a string of 1-{MAX_MESSAGE_ID_CHARS} chars")
    return value


def validate_bundle_shape(bundle: Any, field_name: str = "value") -> dict[str, Any]:
    """Envelope-level check of a SignalBundle dict (the follower validates signal contents)."""
    if not isinstance(bundle, dict):
        raise ProtocolError("bad_bundle", f"{field_name} must be a JSON object (a signal bundle)")
    validate_strategy_id(bundle.get("identifier"), f"{field_name}.identifier")
    if not is_supported_feed_version(bundle.get("version")):
        raise ProtocolError("bad_version", f"{field_name}.version must be >= 1.0.0 and < 2.0.0")
    signals = bundle.get("signals")
    if not isinstance(signals, list):
        raise ProtocolError("bad_bundle", f"{field_name}.signals must be a list")
    if len(signals) > MAX_SIGNALS:
        raise ProtocolError("too_many_signals", f"{field_name}.signals has {len(signals)} signals (max {MAX_SIGNALS})")
    for index, signal in enumerate(signals):
        if not isinstance(signal, dict):
            raise ProtocolError("bad_bundle", f"{field_name}.signals[{index}] must be an object")
    return bundle


def check_frame_size(text: str | bytes) -> None:
    size = len(text.encode("utf-8")) if isinstance(text, str) else len(text)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}", fatal=True)


# ----------------------------------------------------------------------------- canonical JSON + signatures


def canonical_json(obj: Any) -> bytes:
    """Keys sorted, no spaces, non-ASCII kept as UTF-8; NaN/Infinity refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def signing_payload(d: int | float, strategy_id: str, s: dict[str, Any], u: str) -> bytes:
    # The signature covers the STRATEGY id, not the hub's stream id, so it stays valid
    # whatever hub (and stream id) relays it.
    return canonical_json({"d": d, "i": strategy_id, "s": s, "u": u})


def _b64decode(value: str, field_name: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as err:
        raise ProtocolError("bad_key", f"{field_name} is not valid base64") from err


def load_private_key(private_key: str | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key
    raw = _b64decode(private_key, "private key")
    if len(raw) != 32:
        raise ProtocolError("bad_key", "private key must be 32 raw Ed25519 bytes, base64")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(public_key: str) -> Ed25519PublicKey:
    if not isinstance(public_key, str):
        raise ProtocolError("bad_key", "public_key must be a base64 string")
    raw = _b64decode(public_key, "public_key")
    if len(raw) != 32:
        raise ProtocolError("bad_key", "public_key must be 32 raw Ed25519 bytes, base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def validate_public_key(public_key: Any) -> str:
    load_public_key(public_key)
    return public_key


def generate_keypair() -> tuple[str, str]:
    """(private_b64, public_b64), raw 32-byte Ed25519 keys."""
    key = Ed25519PrivateKey.generate()
    private_raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private_raw).decode("ascii"), base64.b64encode(public_raw).decode("ascii")


def sign(private_key: str | Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(load_private_key(private_key).sign(payload)).decode("ascii")


def verify(public_key: str | Ed25519PublicKey, payload: bytes, signature: Any) -> bool:
    """False on a missing, malformed or wrong signature (never raises for bad input)."""
    if not isinstance(signature, str) or not signature:
        return False
    try:
        key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, payload)
        return True
    except (InvalidSignature, ProtocolError, binascii.Error, UnicodeEncodeError, ValueError):
        return False


def sign_message(private_key: str | Ed25519PrivateKey, d: int | float, strategy_id: str, s: dict, u: str) -> str:
    return sign(private_key, signing_payload(d, strategy_id, s, u))


def verify_message(public_key: str, d: Any, strategy_id: str, s: Any, u: Any, g: Any) -> bool:
    try:
        payload = signing_payload(d, strategy_id, s, u)
    except (TypeError, ValueError):
        return False
    return verify(public_key, payload, g)


# ----------------------------------------------------------------------------- server frames (build)


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def ping_frame(now: int | float) -> str:
    # Exactly this byte layout: stock 2022 clients match the raw prefix '{"type":"ping"'.
    return f'{{"type":"ping","message":{int(now)}}}'


def welcome_frame() -> str:
    return '{"type":"welcome"}'


def confirm_subscription_frame(identifier: str = CHANNEL_IDENTIFIER) -> str:
    return _dump({"type": "confirm_subscription", "identifier": identifier})


def reject_subscription_frame(identifier: str, reason: str) -> str:
    return _dump({"type": "reject_subscription", "identifier": identifier, "message": reason})


def delivery_frame(identifier: str, message: dict[str, Any]) -> str:
    return _dump({"identifier": identifier, "message": message})


def error_frame(reason: str) -> str:
    return _dump({"type": "error", "message": reason})


def ack_frame(u: str, q: int) -> str:
    return _dump({"type": "ack", "u": u, "q": q})


def nack_frame(u: Any, reason: str) -> str:
    return _dump({"type": "nack", "u": u, "message": reason})


def make_feed_message(
    u: str, stream_id: str, d: int | float, q: int, s: dict[str, Any], g: str | None
) -> dict[str, Any]:
    return {"u": u, "i": stream_id, "t": CHANNEL_TYPE_SIGNALS, "v": FEED_VERSION, "d": d, "q": q, "s": s, "g": g}


# ----------------------------------------------------------------------------- client commands


@dataclass(frozen=True)
class SubscribeCommand:
    identifier: str
    strategies: tuple[str, ...] | None = None  # None: every strategy the token may follow
    resume: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishCommand:
    identifier: str
    topic: str
    feed_id: str
    version: str
    value_json: str
    bundle: dict[str, Any]
    u: str
    d: int | float
    g: str | None


ClientCommand = SubscribeCommand | PublishCommand  # parse_client_command may also return a PerformanceCommand


def _load_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("bad_frame", f"{what} is not valid JSON", fatal=True) from err


def _load_data(raw: Any, what: str) -> Any:
    # `data` is itself a JSON string; a refused `data` is a refused command, not a dead link.
    if not isinstance(raw, str):
        raise ProtocolError("bad_data", f"{what} must be a JSON string")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("bad_data", f"{what} is not valid JSON") from err


def _parse_subscribe(identifier: str, raw_data: Any) -> SubscribeCommand:
    if raw_data is None or raw_data == "" or raw_data == "{}":
        return SubscribeCommand(identifier=identifier)
    data = _load_data(raw_data, "data")
    if not isinstance(data, dict):
        raise ProtocolError("bad_data", "data must be a JSON object")
    unknown = set(data) - {"strategies", "resume"}
    if unknown:
        raise ProtocolError("bad_data", f"data has unknown keys: {sorted(unknown)}")
    strategies: tuple[str, ...] | None = None
    if data.get("strategies") is not None:
        raw_strategies = data["strategies"]
        if not isinstance(raw_strategies, list) or len(raw_strategies) > 1000:
            raise ProtocolError("bad_data", "data.strategies must be a list of at most 1000 strategy ids")
        strategies = tuple(
            dict.fromkeys(validate_strategy_id(s, "data.strategies[]") for s in raw_strategies)
        )
    resume: dict[str, int] = {}
    if data.get("resume") is not None:
        raw_resume = data["resume"]
        if not isinstance(raw_resume, dict) or len(raw_resume) > 1000:
            raise ProtocolError("bad_data", "data.resume must be an object {strategy id: last_seen_q}")
        for key, value in raw_resume.items():
            validate_strategy_id(key, "data.resume key")
            resume[key] = json_integer(value, f"data.resume[{key}]", 0, MAX_SEQUENCE, "bad_data")
    return SubscribeCommand(identifier=identifier, strategies=strategies, resume=resume)


def _parse_publish(identifier: str, raw_data: Any) -> PublishCommand | PerformanceCommand:
    data = _load_data(raw_data, "data")
    if not isinstance(data, dict):
        raise ProtocolError("bad_data", "data must be a JSON object")
    u = validate_message_id(data.get("u"))
    try:
        topic = data.get("topic")
        if topic == TOPIC_PERFORMANCE:
            from .performance import parse_command  # the snapshot contract lives in its own module

            return parse_command(identifier, data, u)
        if topic != CHANNEL_TYPE_SIGNALS:
            raise ProtocolError("bad_topic", f'data.topic must be "{CHANNEL_TYPE_SIGNALS}" or "{TOPIC_PERFORMANCE}"')
        feed_id = data.get("feed_id")
        if not isinstance(feed_id, str) or not feed_id:
            raise ProtocolError("bad_feed_id", "data.feed_id must be a non-empty string")
        version = data.get("version")
        if not is_supported_feed_version(version):
            raise ProtocolError("bad_version", "data.version must be >= 1.0.0 and < 2.0.0")
        d = json_number(data.get("d"), "data.d", "bad_timestamp", " (unix seconds)")
        g = data.get("g")
        if g is not None and (not isinstance(g, str) or len(g) > 512):
            raise ProtocolError("bad_signature", "data.g must be a base64 string or null")
        value_json = data.get("value")
        if not isinstance(value_json, str):
            raise ProtocolError("bad_bundle", "data.value must be a JSON string of the signal bundle")
        try:
            bundle = json.loads(value_json)
        except (ValueError, RecursionError) as err:
            raise ProtocolError("bad_bundle", "data.value is not valid JSON") from err
        validate_bundle_shape(bundle, "data.value")
        try:
            canonical_json(bundle)  # Python's json reads NaN/Infinity/1e999: refuse them here
        except ValueError as err:
            raise ProtocolError("bad_bundle", "data.value contains a non-finite number") from err
    except ProtocolError as err:
        err.u = u
        raise
    return PublishCommand(identifier, CHANNEL_TYPE_SIGNALS, feed_id, version, value_json, bundle, u, d, g)


def check_identifier(identifier: Any) -> str:
    """The command's identifier, as ActionCable servers read it: a JSON text naming the channel.

    Compared after parsing, so `{"channel": "Spree::MessageChannel"}` (with a space, what Python's
    json.dumps writes and OctoBot's 2022 client sent) is the same channel; the client's own text is
    kept, because replies and deliveries must echo it byte for byte.
    """
    if not isinstance(identifier, str) or not identifier:
        raise ProtocolError("bad_identifier", f"identifier must be a JSON string such as {CHANNEL_IDENTIFIER}")
    if len(identifier) > MAX_IDENTIFIER_CHARS:
        raise ProtocolError("bad_identifier", f"identifier longer than {MAX_IDENTIFIER_CHARS} characters")
    try:
        parsed = json.loads(identifier)
    except ValueError:
        raise ProtocolError("bad_identifier", "identifier is not valid JSON") from None
    if not isinstance(parsed, dict) or parsed.get("channel") != CHANNEL_NAME:
        raise ProtocolError("bad_identifier", f'identifier must name the channel "{CHANNEL_NAME}"')
    return identifier


_DELIVERY_PREFIX = '{"identifier":' + json.dumps(CHANNEL_IDENTIFIER, ensure_ascii=False) + ',"message":'


def delivery_frame_for(frame: str, identifier: str) -> str:
    """A delivery frame built once for every subscriber (canonical identifier), re-addressed to a
    subscriber that used another spelling of the identifier; no re-encoding of the message."""
    if identifier == CHANNEL_IDENTIFIER or not frame.startswith(_DELIVERY_PREFIX):
        return frame
    return '{"identifier":' + _dump(identifier) + ',"message":' + frame[len(_DELIVERY_PREFIX):]


def parse_client_command(text: str | bytes) -> SubscribeCommand | PublishCommand | PerformanceCommand:
    """Parse one client frame. Raises ProtocolError (`fatal` for unreadable frames)."""
    check_frame_size(text)
    frame = _load_json(text, "frame")
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "frame must be a JSON object", fatal=True)
    command = frame.get("command")
    identifier = check_identifier(frame.get("identifier"))
    if command == "subscribe":
        return _parse_subscribe(identifier, frame.get("data"))
    if command == "message":
        return _parse_publish(identifier, frame.get("data"))
    raise ProtocolError("unknown_command", 'command must be "subscribe" or "message"')


def build_subscribe_command(
    strategies: list[str] | tuple[str, ...] | None = None, resume: dict[str, int] | None = None
) -> str:
    frame: dict[str, Any] = {"command": "subscribe", "identifier": CHANNEL_IDENTIFIER}
    data: dict[str, Any] = {}
    if strategies is not None:
        data["strategies"] = list(strategies)
    if resume:
        data["resume"] = dict(resume)
    if data:
        frame["data"] = _dump(data)
    return _dump(frame)


def build_publish_command(feed_id: str, bundle: dict[str, Any], u: str, d: int | float, g: str | None) -> str:
    data = {
        "topic": CHANNEL_TYPE_SIGNALS,
        "feed_id": feed_id,
        "version": FEED_VERSION,
        "value": _dump(bundle),
        "u": u,
        "d": d,
        "g": g,
    }
    return _dump({"command": "message", "identifier": CHANNEL_IDENTIFIER, "data": _dump(data)})


# ----------------------------------------------------------------------------- server frames (parse)


@dataclass(frozen=True)
class Welcome:
    pass


@dataclass(frozen=True)
class Ping:
    message: int


@dataclass(frozen=True)
class Confirm:
    identifier: str


@dataclass(frozen=True)
class Reject:
    identifier: str
    message: str


@dataclass(frozen=True)
class Delivery:
    identifier: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Ack:
    u: str
    q: int


@dataclass(frozen=True)
class Nack:
    u: Any
    message: str


@dataclass(frozen=True)
class PerformanceAck(Ack):
    """The hub stored a performance snapshot: the wire ack has no q (a snapshot takes no place in the signal
    sequence), so q is 0 here; an Ack all the same, for a sender that settles rows on any ack."""


ServerFrame = Welcome | Ping | Confirm | Reject | Delivery | Error | Ack | Nack  # Ack includes PerformanceAck


def parse_server_frame(text: str | bytes) -> ServerFrame:
    check_frame_size(text)
    frame = _load_json(text, "server frame")
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "server frame must be a JSON object", fatal=True)
    kind = frame.get("type")
    if kind is None and "message" in frame and "identifier" in frame:
        if not isinstance(frame["message"], dict):
            raise ProtocolError("bad_frame", "delivery message must be an object")
        return Delivery(str(frame["identifier"]), frame["message"])
    if kind == "ping":
        return Ping(int(json_number(frame.get("message"), "ping.message", "bad_frame")))
    if kind == "welcome":
        return Welcome()
    if kind == "confirm_subscription":
        return Confirm(str(frame.get("identifier")))
    if kind == "reject_subscription":
        return Reject(str(frame.get("identifier")), str(frame.get("message", "")))
    if kind == "error":
        return Error(str(frame.get("message", "")))
    if kind == "ack" and frame.get("topic") == TOPIC_PERFORMANCE:
        return PerformanceAck(str(frame.get("u")), 0)
    if kind == "ack":
        return Ack(str(frame.get("u")), json_integer(frame.get("q"), "ack.q", 1, MAX_SEQUENCE, "bad_frame"))
    if kind == "nack":
        return Nack(frame.get("u"), str(frame.get("message", "")))
    raise ProtocolError("unknown_frame", f"unknown server frame type {kind!r}")


# ----------------------------------------------------------------------------- feed messages (follower side)


@dataclass(frozen=True)
class FeedMessage:
    u: str
    i: str
    t: str
    v: str
    d: int | float
    q: int
    s: dict[str, Any]
    g: str | None

    @property
    def strategy_id(self) -> str:
        return self.s["identifier"]

    def verify(self, public_key: str) -> bool:
        return verify_message(public_key, self.d, self.strategy_id, self.s, self.u, self.g)

    def to_dict(self) -> dict[str, Any]:
        return make_feed_message(self.u, self.i, self.d, self.q, self.s, self.g)


def parse_feed_message(obj: Any) -> FeedMessage:
    """Envelope validation of a delivered / journaled message; errors name the field."""
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "feed message must be a JSON object")
    u = validate_message_id(obj.get("u"))
    try:
        stream_id = obj.get("i")
        if not isinstance(stream_id, str) or not stream_id:
            raise ProtocolError("bad_message", "i (stream id) must be a non-empty string")
        if obj.get("t") != CHANNEL_TYPE_SIGNALS:
            raise ProtocolError("bad_message", f't must be "{CHANNEL_TYPE_SIGNALS}"')
        v = obj.get("v")
        if not is_supported_feed_version(v):
            raise ProtocolError("bad_version", "v must be >= 1.0.0 and < 2.0.0")
        d = json_number(obj.get("d"), "d", "bad_timestamp", " (unix seconds)")
        q = json_integer(obj.get("q"), "q", 1, MAX_SEQUENCE, "bad_sequence")
        s = validate_bundle_shape(obj.get("s"), "s")
        g = obj.get("g")
        if g is not None and not isinstance(g, str):
            raise ProtocolError("bad_signature", "g must be a string or null")
    except ProtocolError as err:
        err.u = u
        raise
    return FeedMessage(u, stream_id, "t", v, d, q, s, g)


# ----------------------------------------------------------------------------- follower sequence rules

SequenceVerdict = Literal["apply", "duplicate", "gap"]


class SequenceTracker:
    """Per-strategy ordering rule: apply q == last + 1, ignore q <= last, fill a gap first."""

    def __init__(self, last_applied: int = 0) -> None:
        if last_applied < 0:
            raise ValueError("last_applied must be >= 0")
        self.last_applied = last_applied

    def classify(self, q: int) -> SequenceVerdict:
        if q <= self.last_applied:
            return "duplicate"
        if q == self.last_applied + 1:
            return "apply"
        return "gap"

    def applied(self, q: int) -> None:
        if q > self.last_applied:
            self.last_applied = q


class RecentIds:
    """Bounded LRU set of message ids for dedup on `u`."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, u: object) -> bool:
        return u in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, u: str) -> bool:
        """Remember u; False when it was already known."""
        if u in self._ids:
            self._ids.move_to_end(u)
            return False
        self._ids[u] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True
