"""Chain address formats (stakehouse.funding.addresses): EIP-55, BIP-173, base58check, tx ids."""

from __future__ import annotations

import re

import base58
import bech32
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakehouse.funding.addresses import (
    FORMATS,
    eip55,
    is_valid_address,
    needs_tag,
    new_address,
    new_tx_id,
    platform_address,
)

# EIP-55's own test vectors (all caps, all lower, normal)
EIP55_VECTORS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("addr", EIP55_VECTORS)
def test_eip55_vectors(addr: str) -> None:
    assert eip55(addr[2:]) == addr
    assert eip55(addr[2:].lower()) == addr
    assert is_valid_address("evm", addr)


@pytest.mark.parametrize("addr", EIP55_VECTORS[4:])
def test_eip55_mixed_case_must_match(addr: str) -> None:
    # the unchecksummed spellings are accepted, a wrong mixed case is not
    assert is_valid_address("evm", "0x" + addr[2:].lower())
    assert is_valid_address("evm", "0x" + addr[2:].upper())
    swapped = "0x" + addr[2:].swapcase()
    assert not is_valid_address("evm", swapped)
    first_letter = next(i for i, c in enumerate(addr) if i >= 2 and c.isalpha())
    flipped = addr[:first_letter] + addr[first_letter].swapcase() + addr[first_letter + 1:]
    assert not is_valid_address("evm", flipped)


@pytest.mark.parametrize("addr", [
    "", "0x", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",
    "0xgaAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
])
def test_evm_malformed(addr: str) -> None:
    assert not is_valid_address("evm", addr)


# BIP-173: valid mainnet P2WPKH, and invalid addresses
def test_bech32_bip173_valid() -> None:
    for addr in ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"):
        assert is_valid_address("btc", addr)
    version, program = bech32.decode("bc", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")
    assert version == 0 and program is not None
    assert bytes(program).hex() == "751e76e8199196d454941c45d1b3a323f1433bd6"


@pytest.mark.parametrize("addr", [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # invalid human-readable part
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # invalid checksum
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",  # invalid witness version
    "bc1rw5uspcuh",  # invalid program length
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",  # invalid program length
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # invalid program length for witness version 0
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",  # zero padding of more than 4 bits
    "bc1gmk9yu",  # empty data section
    "bc1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",  # mixed case
    # valid BIP-173 addresses that are not P2WPKH (witness v1 / v16): not a deposit address of ours
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
    "BC1SW50QA3JX3S",
])
def test_bech32_bip173_invalid(addr: str) -> None:
    assert not is_valid_address("btc", addr)


def test_known_base58check_addresses() -> None:
    assert is_valid_address("btc", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")  # the genesis block's
    assert not is_valid_address("btc", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")
    assert not is_valid_address("btc", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")  # P2SH: version 0x05
    assert is_valid_address("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")  # USDT's TRC20 contract
    assert not is_valid_address("tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u")
    assert not is_valid_address("tron", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert is_valid_address("xrp", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh")  # the XRP genesis account
    assert not is_valid_address("xrp", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTj")
    assert not is_valid_address("xrp", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert is_valid_address("sol", "1" * 32)  # the system program: 32 zero bytes
    assert is_valid_address("sol", "So11111111111111111111111111111111111111112")
    assert not is_valid_address("sol", "1" * 31)
    assert not is_valid_address("sol", "0" * 32)


def test_base58check_round_trips() -> None:
    for _ in range(50):
        for fmt, version, alphabet in (("btc", 0x00, base58.BITCOIN_ALPHABET), ("tron", 0x41, base58.BITCOIN_ALPHABET),
                                       ("xrp", 0x00, base58.XRP_ALPHABET)):
            addr = new_address(fmt)
            payload = base58.b58decode_check(addr, alphabet=alphabet)
            assert len(payload) == 21 and payload[0] == version
            assert base58.b58encode_check(payload, alphabet=alphabet).decode() == addr


def test_shapes_and_prefixes() -> None:
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", new_address("evm"))
    assert new_address("btc").startswith("1")
    assert new_address("btc", 2).startswith("bc1q") and len(new_address("btc", 2)) == 42
    assert new_address("tron").startswith("T")
    assert new_address("xrp").startswith("r")
    assert 32 <= len(new_address("sol")) <= 44
    with pytest.raises(ValueError):
        new_address("evm", 2)
    with pytest.raises(ValueError):
        new_address("btc", 3)
    with pytest.raises(ValueError):
        new_address("doge")
    with pytest.raises(ValueError):
        is_valid_address("doge", "x")


def test_platform_address_is_deterministic_and_valid() -> None:
    for fmt in FORMATS:
        assert platform_address(fmt) == platform_address(fmt)
        assert is_valid_address(fmt, platform_address(fmt))
    assert platform_address("xrp").startswith("r")


def test_tx_ids_and_tags() -> None:
    assert re.fullmatch(r"0x[0-9a-f]{64}", new_tx_id("evm"))
    for fmt in ("btc", "tron", "sol", "xrp"):
        assert re.fullmatch(r"[0-9a-f]{64}", new_tx_id(fmt))
    assert new_tx_id("evm") != new_tx_id("evm")
    assert [needs_tag(f) for f in FORMATS] == [False, False, False, False, True]


# Solana addresses are bare base58 public keys without a checksum: a changed character is another
# well-formed key, so the one-character test covers the checksummed formats only.
CHECKSUMMED = [("evm", 1), ("btc", 1), ("btc", 2), ("tron", 1), ("xrp", 1)]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([*CHECKSUMMED, ("sol", 1)]), pos=st.integers(min_value=0), pick=st.integers(min_value=0))
def test_generated_addresses_validate_and_one_changed_character_does_not(kind: tuple[str, int], pos: int,
                                                                          pick: int) -> None:
    fmt, addr_type = kind
    addr = new_address(fmt, addr_type)
    assert is_valid_address(fmt, addr)
    if fmt == "sol":
        return
    if fmt == "evm":
        # EIP-55 is a checksum in the letters' case: flipping the case of any letter is always caught.
        # (A changed hex value is caught only with probability 1 - 2^-letters, so it is no test.)
        letters = [j for j, c in enumerate(addr) if j >= 2 and c.isalpha()]
        if not letters:
            return
        i = letters[pos % len(letters)]
        changed = addr[:i] + addr[i].swapcase() + addr[i + 1:]
        if changed[2:] in (changed[2:].lower(), changed[2:].upper()):
            return  # now a one-case spelling, which carries no checksum: accepted by design
        assert not is_valid_address(fmt, changed)
        return
    prefix = 4 if fmt == "btc" and addr_type == 2 else 0
    i = prefix + pos % (len(addr) - prefix)
    if addr_type == 2:
        pool = bech32.CHARSET
    else:
        pool = (base58.XRP_ALPHABET if fmt == "xrp" else base58.BITCOIN_ALPHABET).decode()
    choices = [c for c in pool if c != addr[i]]
    changed = addr[:i] + choices[pick % len(choices)] + addr[i + 1:]
    assert not is_valid_address(fmt, changed)


def test_generated_addresses_are_distinct() -> None:
    for fmt, addr_type in [*CHECKSUMMED, ("sol", 1)]:
        assert len({new_address(fmt, addr_type) for _ in range(200)}) == 200
