"""With the publisher's public key configured, the mode itself applies only correctly signed messages."""
from __future__ import annotations

from decimal import Decimal

import signal_factory as sf
from octobot_signals.core import protocol
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

SPEC = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={"BTC/USDT": Decimal(20000)})


def signed(private_key: str, **kwargs) -> dict:
    message = sf.create(order_type="buy_limit", limit_price=19000.0, **kwargs)
    message["g"] = protocol.sign_message(private_key, message["d"], message["s"]["identifier"], message["s"],
                                         message["u"])
    return message


async def test_signed_applied_unsigned_and_forged_refused():
    private_key, public_key = protocol.generate_keypair()
    other_private, _ = protocol.generate_keypair()
    async with follower_on_sim_exchange(SPEC, {"public_key": public_key}) as f:
        unsigned = sf.create(order_type="buy_limit", limit_price=19000.0)
        forged = signed(other_private)
        tampered = signed(private_key)
        tampered["s"]["signals"][0]["content"]["target_amount"] = "90%"
        for message, expected in ((unsigned, "unsigned"), (forged, "does not match"), (tampered, "does not match")):
            outcomes = await f.apply(message)
            assert [o.result.value for o in outcomes] == ["rejected"]
            assert expected in outcomes[0].reason and outcomes[0].reason.startswith("g:")
        assert f.sim.open_orders() == []
        good = await f.apply(signed(private_key))
        assert [o.result.value for o in good] == ["created"]
