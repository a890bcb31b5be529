"""Public data: server time and the operator's spot instruments."""

from __future__ import annotations

from typing import Any

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.money import fmt

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
CONTRACT_FIELDS = ("uly", "instFamily", "settleCcy", "ctVal", "ctMult", "ctValCcy", "optType", "stk", "expTime",
                   "lever", "ctType", "alias", "category")


def get_time(call: Call) -> list[dict[str, str]]:
    return [{"ts": str(to_ms(call.services.clock.now()))}]


def get_instruments(call: Call) -> list[dict[str, Any]]:
    inst_type = call.params.choice("instType", INST_TYPES, required=True)
    inst_id = call.params.text("instId", max_len=32)
    call.params.text("uly", max_len=32)
    call.params.text("instFamily", max_len=32)
    if inst_type != "SPOT":
        return []  # the platform lists spot pairs only
    return [
        {"instType": "SPOT", "instId": r.inst_id, "baseCcy": r.base_ccy, "quoteCcy": r.quote_ccy,
         "tickSz": fmt(r.tick_sz), "lotSz": fmt(r.lot_sz), "minSz": fmt(r.min_sz), "maxLmtSz": fmt(r.max_sz),
         "maxMktSz": fmt(r.max_sz), "maxMktAmt": "1000000", "maxTwapSz": "", "maxIcebergSz": "",
         "maxTriggerSz": "", "maxStopSz": "", "state": r.state, "listTime": str(to_ms(r.list_time)),
         "ruleType": "normal", **dict.fromkeys(CONTRACT_FIELDS, "")}
        for r in call.services.reference.instruments(inst_id)
    ]


ROUTES = [
    Route("GET", "/public/time", get_time, None, Limit(10, 2, "ip")),
    Route("GET", "/public/instruments", get_instruments, None, Limit(20, 2, "ip+instType")),
]
