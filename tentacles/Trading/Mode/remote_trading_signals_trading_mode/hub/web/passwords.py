"""Password hashing with argon2id (argon2-cffi), always off the event loop."""
from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256  # argon2 takes any length; the bound keeps one request's cost fixed

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the username is unknown, so that a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, _hasher.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(_verify, password_hash, password))


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_CHARS:
        return f"The password must have at least {MIN_PASSWORD_CHARS} characters."
    if len(password) > MAX_PASSWORD_CHARS:
        return f"The password must have at most {MAX_PASSWORD_CHARS} characters."
    return None
