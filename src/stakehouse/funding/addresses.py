"""Chain address formats (pure): new random addresses, checksum validation and transaction ids.

Formats (``chains.address_format``):

- ``evm``: ``0x`` + 40 hex, EIP-55 mixed-case checksum (Keccak-256 of the lower-case hex).
- ``btc``: P2PKH base58check with version byte 0x00 (``1...``, ``addr_type`` 1) or bech32
  P2WPKH, witness version 0 with a 20-byte program (``bc1q...``, ``addr_type`` 2, BIP-173).
- ``tron``: base58check with version byte 0x41 (``T...``).
- ``sol``: base58 of a 32-byte public key (no checksum; validation checks the length).
- ``xrp``: base58check with the XRP alphabet, version 0x00 (``r...``). XRP is a tag chain: the
  platform shares one address (:func:`platform_address`) and tells deposits apart by a tag.

Randomness comes from :mod:`secrets`; nothing here reads the clock or the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import base58
import bech32
from Crypto.Hash import keccak

EVM = "evm"
BTC = "btc"
TRON = "tron"
SOL = "sol"
XRP = "xrp"
FORMATS = (EVM, BTC, TRON, SOL, XRP)

#: Bitcoin address types of the OKX API (``addrType``): 1 legacy P2PKH, 2 SegWit bech32.
ADDR_TYPE_LEGACY = 1
ADDR_TYPE_SEGWIT = 2

_HEX40 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BTC_HRP = "bc"
_TRON_VERSION = b"\x41"
_P2PKH_VERSION = b"\x00"
_XRP_VERSION = b"\x00"


def _require_format(address_format: str) -> None:
    if address_format not in FORMATS:
        raise ValueError(f"unknown address format {address_format!r}")


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def eip55(hex40: str) -> str:
    """The EIP-55 checksummed form of 40 hex digits (any case), with ``0x``."""
    lower = hex40.lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


def _hash160_like() -> bytes:
    """20 random bytes standing for a hash160 of a public key (the simulator holds no keys)."""
    return secrets.token_bytes(20)


def new_address(address_format: str, addr_type: int = ADDR_TYPE_LEGACY) -> str:
    """A fresh random address of the format. ``addr_type`` 2 (bech32) exists only for ``btc``."""
    _require_format(address_format)
    if addr_type not in (ADDR_TYPE_LEGACY, ADDR_TYPE_SEGWIT):
        raise ValueError(f"unknown address type {addr_type}")
    if addr_type == ADDR_TYPE_SEGWIT and address_format != BTC:
        raise ValueError("address type 2 exists only for btc chains")
    if address_format == EVM:
        return eip55(secrets.token_hex(20))
    if address_format == BTC:
        if addr_type == ADDR_TYPE_SEGWIT:
            encoded = bech32.encode(_BTC_HRP, 0, _hash160_like())
            assert encoded is not None
            return encoded
        return base58.b58encode_check(_P2PKH_VERSION + _hash160_like()).decode("ascii")
    if address_format == TRON:
        return base58.b58encode_check(_TRON_VERSION + _hash160_like()).decode("ascii")
    if address_format == SOL:
        return base58.b58encode(secrets.token_bytes(32)).decode("ascii")
    return base58.b58encode_check(_XRP_VERSION + _hash160_like(), alphabet=base58.XRP_ALPHABET).decode("ascii")


def platform_address(address_format: str) -> str:
    """The one address the platform shares on a tag chain, deterministic per format (the same in
    every process and installation)."""
    _require_format(address_format)
    seed = hashlib.sha256(f"stakehouse:platform:{address_format}".encode()).digest()[:20]
    if address_format == XRP:
        return base58.b58encode_check(_XRP_VERSION + seed, alphabet=base58.XRP_ALPHABET).decode("ascii")
    if address_format == EVM:
        return eip55(seed.hex())
    if address_format == BTC:
        return base58.b58encode_check(_P2PKH_VERSION + seed).decode("ascii")
    if address_format == TRON:
        return base58.b58encode_check(_TRON_VERSION + seed).decode("ascii")
    return base58.b58encode(hashlib.sha256(seed).digest()).decode("ascii")


def _b58check_payload(addr: str, alphabet: bytes = base58.BITCOIN_ALPHABET) -> bytes | None:
    try:
        return base58.b58decode_check(addr, alphabet=alphabet)
    except ValueError:
        return None


def is_valid_address(address_format: str, addr: str) -> bool:
    """Whether ``addr`` is a well-formed address of the format, checksum included. For ``evm`` an
    all-lower or all-upper hex address carries no checksum and is accepted; a mixed-case one must
    match EIP-55."""
    _require_format(address_format)
    if not addr.isascii() or not addr.isprintable() or " " in addr:
        return False
    if address_format == EVM:
        if not _HEX40.match(addr):
            return False
        body = addr[2:]
        if body == body.lower() or body == body.upper():
            return True
        return eip55(body) == addr
    if address_format == BTC:
        if addr[:3].lower() == "bc1":
            version, program = bech32.decode(_BTC_HRP, addr)
            return version == 0 and program is not None and len(program) == 20
        payload = _b58check_payload(addr)
        return payload is not None and len(payload) == 21 and payload[:1] == _P2PKH_VERSION
    if address_format == TRON:
        payload = _b58check_payload(addr)
        return payload is not None and len(payload) == 21 and payload[:1] == _TRON_VERSION
    if address_format == SOL:
        try:
            raw = base58.b58decode(addr)
        except ValueError:
            return False
        # base58 is not unique for leading zero bytes only when re-encoded differently: require the
        # canonical encoding so that two spellings never name one key
        return len(raw) == 32 and base58.b58encode(raw).decode("ascii") == addr
    payload = _b58check_payload(addr, base58.XRP_ALPHABET)
    return payload is not None and len(payload) == 21 and payload[:1] == _XRP_VERSION


def new_tx_id(address_format: str) -> str:
    """A random transaction hash in the chain's notation: ``0x`` + 64 hex on EVM, 64 hex otherwise."""
    _require_format(address_format)
    digest = secrets.token_hex(32)
    return "0x" + digest if address_format == EVM else digest


def needs_tag(address_format: str) -> bool:
    """Whether deposits on chains of this format are told apart by a tag (memo) on a shared address."""
    _require_format(address_format)
    return address_format == XRP
