"""The one exception the HollaEx handlers raise: an HTTP status and HollaEx's `{"message": ...}` body.

The messages are HollaEx's own texts where ccxt keys on them (its hollaex client maps error
messages by substring: "Order not found" -> OrderNotFound, "Insufficient balance" ->
InsufficientFunds, "API request is expired" -> InvalidNonce; a 403 -> AuthenticationError).
"""
from __future__ import annotations

ORDER_NOT_FOUND = "Order not found"
INSUFFICIENT_BALANCE = "Insufficient balance to perform the order"
API_KEY_NULL = "Access Denied: API Key is not provided"
API_SIGNATURE_NULL = "Access Denied: API Signature is not provided"
API_REQUEST_EXPIRED = "Access Denied: API request is expired"
API_KEY_INVALID = "Access Denied: Invalid API Key"
API_KEY_INACTIVE = "Access Denied: API Key is frozen"
API_SIGNATURE_INVALID = "Access Denied: Invalid API Signature"
POST_ONLY_REJECTED = (
    "Error 1001 - Order rejected. Order could not be submitted order was set to a post only order."
)
POST_ONLY_MARKET = "Error 1001 - POST ONLY order can not be of type market"


class ApiError(Exception):
    """Answered as `status` with `{"message": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
