"""Every reason a product may refuse with is mapped to a wire code by each adapter that serves it."""

from __future__ import annotations

from enum import StrEnum

import pytest

from stakehouse import errors as dom
from stakehouse.api.gemini.errors import from_domain as gemini_from_domain
from stakehouse.api.okx.errors import CODES, REFUSAL_CODES
from stakehouse.api.okx.errors import from_domain as okx_from_domain
from stakehouse.broker.rules import BrokerReason
from stakehouse.funding.rules import FundingReason
from stakehouse.rebates.rules import RebateReason
from stakehouse.staking.provider.rules import ProviderReason
from stakehouse.staking.rules import StakingReason
from stakehouse.trading.rules import TradingReason


@pytest.mark.parametrize("reasons", [StakingReason, BrokerReason, FundingReason, TradingReason,
                                     RebateReason])
def test_every_reason_has_an_okx_code(reasons: type[StrEnum]) -> None:
    table = REFUSAL_CODES[reasons]
    assert set(table) == set(reasons)
    for reason in reasons:
        assert table[reason] in CODES
        err = okx_from_domain(dom.Refused(reason, f"refused: {reason}", param0="x", ccy="ETH", minUnit="1"))
        assert err.code == table[reason] and err.msg


def test_reasons_of_different_products_are_told_apart() -> None:
    # "not_cancellable" is both a staking and a funding reason: each gets its own product's code
    assert okx_from_domain(dom.Refused(StakingReason.NOT_CANCELLABLE, "scheduled")).code == "51721"
    assert okx_from_domain(dom.Refused(FundingReason.NOT_CANCELLABLE, "broadcast")).code == "58216"


def test_every_provider_reason_has_a_gemini_reason() -> None:
    for reason in ProviderReason:
        err = gemini_from_domain(dom.Refused(reason, "refused"))
        assert (err.status, err.reason) == (400, "InvalidQuantity")
