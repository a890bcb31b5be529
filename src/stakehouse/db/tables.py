"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/versions`` build it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from stakehouse.db.types import Money, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = UtcDateTime()

#: Small key/value facts about this installation (e.g. when jobs start counting periods).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The sandbox clock: business time = base_time + (wall - base_wall) while running.
clock_state = Table(
    "clock_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("base_time", TS, nullable=False),
    Column("base_wall", TS, nullable=False),
    Column("running", Boolean, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("uid", String(20), primary_key=True),
    Column("env", String(4), nullable=False),  # live | demo
    Column("master_uid", String(20), ForeignKey("users.uid"), nullable=True),  # root of the group
    Column("parent_uid", String(20), ForeignKey("users.uid"), nullable=True),  # direct parent
    Column("level", Integer, nullable=False, default=0),  # 0 master, 1 sub, 2 sub of a sub
    Column("sub_name", String(32), nullable=True, unique=True),
    Column("label", String(64), nullable=False, default=""),
    Column("kyc_level", Integer, nullable=False, default=0),
    Column("frozen", Boolean, nullable=False, default=False),
    Column("frozen_funcs", String(200), nullable=False, default=""),
    Column("can_trans_out", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
    #: Account level (ND ``acctLv``): 1 spot, 2 spot and futures, 3 multi-currency, 4 portfolio.
    Column("acct_lv", Integer, nullable=False, default=1, server_default="1"),
    #: Beneficiary account type (6 funding, 18 trading) of all this user's deposit addresses.
    Column("deposit_to", Integer, nullable=False, default=6, server_default="6"),
    #: A deleted sub-account: history stays, keys are revoked, the name stays taken.
    Column("deleted_at", TS, nullable=True),
    CheckConstraint("env in ('live', 'demo')", name="env"),
    CheckConstraint("level in (0, 1, 2)", name="level"),
)
Index("ix_users_master", users.c.master_uid)

terms_acceptances = Table(
    "terms_acceptances",
    metadata,
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("product", String(32), primary_key=True),
    Column("accepted_at", TS, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("api_key", String(64), nullable=False, unique=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("secret_enc", Text, nullable=False),
    Column("passphrase_hash", Text, nullable=False),
    Column("perms", String(64), nullable=False),
    Column("ips", Text, nullable=False, default=""),
    Column("label", String(64), nullable=False, default=""),
    Column("frozen", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
    Column("revoke_reason", String(32), nullable=True),
)
Index("ix_api_keys_uid", api_keys.c.uid)

currencies = Table(
    "currencies",
    metadata,
    Column("ccy", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("scale", Integer, nullable=False),  # decimals accepted in amounts
)

chains = Table(
    "chains",
    metadata,
    Column("ccy", String(16), ForeignKey("currencies.ccy"), primary_key=True),
    Column("chain", String(48), primary_key=True),  # e.g. USDT-TRC20
    Column("main_net", Boolean, nullable=False),
    Column("can_dep", Boolean, nullable=False),
    Column("can_wd", Boolean, nullable=False),
    Column("can_internal", Boolean, nullable=False),
    Column("need_tag", Boolean, nullable=False),
    Column("min_dep", Money, nullable=False),
    Column("min_wd", Money, nullable=False),
    Column("max_wd", Money, nullable=False),
    Column("wd_tick_sz", Integer, nullable=False),
    Column("fee", Money, nullable=False),
    Column("confirmations", Integer, nullable=False),
    Column("unlock_confirmations", Integer, nullable=False),
    #: Sandbox chain simulator: seconds per block, and the address format (``chain/addresses.py``).
    Column("block_seconds", Integer, nullable=False, default=10, server_default="10"),
    Column("address_format", String(16), nullable=False, default="evm", server_default="evm"),
)

instruments = Table(
    "instruments",
    metadata,
    Column("inst_id", String(32), primary_key=True),
    Column("base_ccy", String(16), ForeignKey("currencies.ccy"), nullable=False),
    Column("quote_ccy", String(16), ForeignKey("currencies.ccy"), nullable=False),
    Column("tick_sz", Money, nullable=False),
    Column("lot_sz", Money, nullable=False),
    Column("min_sz", Money, nullable=False),
    Column("max_sz", Money, nullable=False),
    Column("list_time", TS, nullable=False),
    Column("state", String(16), nullable=False),
)

#: One row per (owner, account type, currency): the cached balance, kept in step with
#: postings in the same transaction. Owner is ``u:<uid>`` for users, ``s:<name>`` for the
#: platform's system accounts (account type 0). The migration also adds a CHECK that a user
#: balance is never negative (its SQL differs per database, so it lives only there).
ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(48), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=True),
    Column("acct_type", Integer, nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("allow_negative", Boolean, nullable=False),
    Column("available", Money, nullable=False),
    Column("locked", Money, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("owner", "acct_type", "ccy", name="uq_ledger_accounts_owner_type_ccy"),
    # 0 system, 6 funding, 18 trading, 1000 + n staking balance with provider n (ledger/rules.py)
    CheckConstraint("acct_type in (0, 6, 18) or acct_type > 1000", name="acct_type"),
)
Index("ix_ledger_accounts_uid", ledger_accounts.c.uid)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(32), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("uid", String(20), nullable=True),  # the user the entry is about, for history
    Column("created_at", TS, nullable=False),
    Column("memo", Text, nullable=False, default=""),
    Column("reverses_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("journal_entries.id"),
           nullable=True),
)
Index("ix_journal_entries_uid", journal_entries.c.uid, journal_entries.c.id)

postings = Table(
    "postings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("journal_entries.id"),
           nullable=False),
    Column("account_id", Integer, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("bucket", String(16), nullable=False),  # available | locked
    Column("ccy", String(16), nullable=False),
    Column("amount", Money, nullable=False),  # signed: + credit to the holder, - debit
    Column("created_at", TS, nullable=False),
    CheckConstraint("bucket in ('available', 'locked')", name="bucket"),
)
Index("ix_postings_account_time", postings.c.account_id, postings.c.created_at)
Index("ix_postings_entry", postings.c.entry_id)

transfers = Table(
    "transfers",
    metadata,
    Column("trans_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),  # the caller
    Column("client_id", String(32), nullable=True),
    Column("type", Integer, nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("amt", Money, nullable=False),
    Column("from_uid", String(20), nullable=False),
    Column("from_type", Integer, nullable=False),
    Column("to_uid", String(20), nullable=False),
    Column("to_type", Integer, nullable=False),
    Column("sub_acct", String(32), nullable=False, default=""),
    Column("state", String(16), nullable=False),
    Column("entry_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("journal_entries.id"),
           nullable=True),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("uid", "client_id", name="uq_transfers_uid_client_id"),
)

deposits = Table(
    "deposits",
    metadata,
    Column("dep_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("chain", String(48), nullable=False),
    Column("amt", Money, nullable=False),
    Column("type", Integer, nullable=False),  # 3 internal, 4 on-chain
    Column("from_addr", String(128), nullable=False, default=""),
    Column("to_addr", String(128), nullable=False, default=""),
    Column("tx_id", String(128), nullable=False, default=""),
    Column("from_wd_id", String(20), nullable=False, default=""),
    Column("state", Integer, nullable=False),  # 0 confirming, 1 credited, 2 done
    Column("confirmations", Integer, nullable=False, default=0),
    Column("acct_type", Integer, nullable=False, default=6),
    Column("entry_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("journal_entries.id"),
           nullable=True),
    Column("created_at", TS, nullable=False),
    # chain simulator (migration 0004): the address it was sent to, its tag, the confirmations it
    # needs to be credited (state 1) and to succeed (state 2), and when it moves next
    Column("address_id", BigInteger().with_variant(Integer, "sqlite"), nullable=True),
    Column("tag", String(32), nullable=False, default="", server_default=""),
    Column("from_uid", String(20), nullable=True),
    Column("credit_confirmations", Integer, nullable=False, default=0, server_default="0"),
    Column("unlock_confirmations", Integer, nullable=False, default=0, server_default="0"),
    Column("block_seconds", Integer, nullable=False, default=0, server_default="0"),
    Column("next_at", TS, nullable=True),
    Column("credited_at", TS, nullable=True),
    Column("completed_at", TS, nullable=True),
)
Index("ix_deposits_uid_time", deposits.c.uid, deposits.c.created_at)

#: Exactly-once job execution: one row per (job, period) that has run.
job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("period", String(32), primary_key=True),  # ISO start of the period (UTC)
    Column("due_at", TS, nullable=False),
    Column("finished_at", TS, nullable=False),
    Column("result", Text, nullable=False, default=""),
)
#: A poll reads the runs of its window only (``due_at`` in a range), however long the history.
Index("ix_job_runs_due_at", job_runs.c.due_at)

#: A chunked run (``jobs/chunks.py``): planned in one transaction (its chunks and the parameters
#: they share, e.g. the day's rate), done chunk by chunk, finished once every chunk is done (then
#: its ``job_runs`` row is written). ``finished_at`` NULL: the run is in progress.
job_run_plans = Table(
    "job_run_plans",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("period", String(32), primary_key=True),
    Column("planned", Integer, nullable=False),
    Column("params", Text, nullable=False, default="{}"),  # JSON, money as strings
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    Column("totals", Text, nullable=False, default="{}"),  # JSON sums of the chunks' totals, when finished
)
Index("ix_job_run_plans_open", job_run_plans.c.finished_at)

#: One idempotent piece of a chunked run: the uids in ``[lo, hi)`` (NULL: unbounded), done in one
#: transaction that also sets ``done_at`` and its ``totals``. A worker claims a chunk by locking its
#: row (``FOR UPDATE SKIP LOCKED``): a crash rolls the chunk back and releases it.
job_run_chunks = Table(
    "job_run_chunks",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("period", String(32), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("lo", String(20), nullable=True),
    Column("hi", String(20), nullable=True),
    Column("done_at", TS, nullable=True),
    Column("totals", Text, nullable=False, default="{}"),  # JSON, money as strings
    ForeignKeyConstraint(["job", "period"], ["job_run_plans.job", "job_run_plans.period"]),
)

# -- liquid staking (staking-rules.md) ----------------------------------------------------

_ID = BigInteger().with_variant(Integer, "sqlite")

#: One row per product: every *config* value of the rules. Money limits NULL = unlimited.
staking_products = Table(
    "staking_products",
    metadata,
    Column("product", String(16), primary_key=True),
    Column("staked_ccy", String(16), ForeignKey("currencies.ccy"), nullable=False),
    Column("token_ccy", String(16), ForeignKey("currencies.ccy"), nullable=False, unique=True),
    Column("precision", Integer, nullable=False),
    Column("purchase_enabled", Boolean, nullable=False),
    Column("min_purchase", Money, nullable=False),
    Column("total_quota", Money, nullable=True),
    Column("user_quota", Money, nullable=True),
    Column("min_redeem", Money, nullable=False),
    Column("fast_redemption_enabled", Boolean, nullable=False),
    Column("fast_redemption_daily_limit", Money, nullable=False),
    Column("daily_redemption_cap", Money, nullable=True),
    Column("unbonding_days", Integer, nullable=False),
    Column("redeem_cancellable", Boolean, nullable=False),
    Column("service_fee_rate", Money, nullable=False),
    Column("min_kyc_level", Integer, nullable=False),
    Column("sub_accounts_allowed", Boolean, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: rate(D) as published by the operator (an APY; the most recent earlier one carries forward).
staking_rates = Table(
    "staking_rates",
    metadata,
    Column("product", String(16), ForeignKey("staking_products.product"), primary_key=True),
    Column("day", String(10), primary_key=True),  # T-day, ISO date
    Column("rate", Money, nullable=False),
    Column("published_at", TS, nullable=False),
)

#: Purchase and redeem requests. ``redeeming_amt`` = locked tokens not yet delivered,
#: ``scheduled_amt`` = the part the settlement runs have scheduled so far.
staking_orders = Table(
    "staking_orders",
    metadata,
    Column("ord_id", _ID, primary_key=True, autoincrement=True),
    Column("product", String(16), ForeignKey("staking_products.product"), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("group_uid", String(20), nullable=False),
    Column("type", String(16), nullable=False),
    Column("amt", Money, nullable=False),
    Column("redeeming_amt", Money, nullable=False),
    Column("scheduled_amt", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("fast", Boolean, nullable=False),
    Column("request_time", TS, nullable=False),
    Column("completed_time", TS, nullable=True),
    Column("est_completed_time", TS, nullable=True),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("reversal_entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("reversal_reason", Text, nullable=True),
    CheckConstraint("type in ('purchase', 'redeem')", name="type"),
    CheckConstraint("status in ('pending', 'success', 'failed', 'cancelled')", name="status"),
)
Index("ix_staking_orders_user", staking_orders.c.uid, staking_orders.c.product, staking_orders.c.request_time)
Index("ix_staking_orders_queue", staking_orders.c.product, staking_orders.c.status, staking_orders.c.request_time,
      staking_orders.c.ord_id)

#: Parts of standard redemptions scheduled by a settlement run, delivered ``unbonding_days`` later.
redemption_parts = Table(
    "redemption_parts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("ord_id", _ID, ForeignKey("staking_orders.ord_id"), nullable=False),
    Column("product", String(16), nullable=False),
    Column("scheduled_day", String(10), nullable=False),
    Column("deliver_day", String(10), nullable=False),
    Column("amount", Money, nullable=False),
    Column("delivered_at", TS, nullable=True),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
)
Index("ix_redemption_parts_due", redemption_parts.c.product, redemption_parts.c.deliver_day)
Index("ix_redemption_parts_order", redemption_parts.c.ord_id)

#: Fast redemption drawn per account group and T-day (the row is the lock that serialises it).
fast_redemption_usage = Table(
    "fast_redemption_usage",
    metadata,
    Column("product", String(16), primary_key=True),
    Column("group_uid", String(20), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("used", Money, nullable=False),
)

#: One reward run per (product, T-day): its totals and its journal entry.
staking_reward_runs = Table(
    "staking_reward_runs",
    metadata,
    Column("product", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("rate", Money, nullable=True),
    Column("holders", Integer, nullable=False),
    Column("eligible", Money, nullable=False),
    Column("gross", Money, nullable=False),
    Column("net", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("ran_at", TS, nullable=False),
)

#: Each holder's reward for a (product, T-day); only holders paid something get a row.
staking_rewards = Table(
    "staking_rewards",
    metadata,
    Column("product", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("uid", String(20), primary_key=True),
    Column("eligible", Money, nullable=False),
    Column("gross", Money, nullable=False),
    Column("net", Money, nullable=False),
    Column("fee", Money, nullable=False),
)
Index("ix_staking_rewards_user", staking_rewards.c.uid, staking_rewards.c.product, staking_rewards.c.day)

#: Postings by currency and time: the reward run reads a day's token movements through it.
Index("ix_postings_ccy_time", postings.c.ccy, postings.c.created_at)
#: Holders of a currency by user: the reward run walks a token's holders through it.
Index("ix_ledger_accounts_ccy_uid", ledger_accounts.c.ccy, ledger_accounts.c.uid)

# -- provider staking (Gemini-style products, staking-rules.md section 9) -------------------

#: Gemini API keys: payload-signed, with roles, a nonce sequence and a scope (account or master).
gemini_api_keys = Table(
    "gemini_api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("api_key", String(64), nullable=False, unique=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("roles", String(64), nullable=False),
    Column("time_based_nonce", Boolean, nullable=False),
    #: The last accepted nonce times 10^6 (exact integer); NULL before the first call.
    Column("last_nonce", BigInteger, nullable=True),
    Column("secret_enc", Text, nullable=False),
    Column("ips", Text, nullable=False, default=""),
    Column("label", String(64), nullable=False, default=""),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    CheckConstraint("scope in ('account', 'master')", name="scope"),
)
Index("ix_gemini_api_keys_uid", gemini_api_keys.c.uid)

#: USD prices set by the operator, append-only: the price of ``ccy`` at a moment is the latest
#: row at or before it (``id`` orders two set at the same moment).
usd_prices = Table(
    "usd_prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ccy", String(16), ForeignKey("currencies.ccy"), nullable=False),
    Column("set_at", TS, nullable=False),
    Column("price", Money, nullable=False),
)
Index("ix_usd_prices_ccy_time", usd_prices.c.ccy, usd_prices.c.set_at, usd_prices.c.id)

#: Staking providers (validators, pools) by UUID; ``provider_no`` names their ledger account type.
staking_providers = Table(
    "staking_providers",
    metadata,
    Column("provider_no", Integer, primary_key=True, autoincrement=True),
    Column("provider_id", String(36), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
)

#: One product per (provider, currency): every *config* value. Money limits NULL = unlimited.
provider_products = Table(
    "provider_products",
    metadata,
    Column("provider_no", Integer, ForeignKey("staking_providers.provider_no"), primary_key=True),
    Column("ccy", String(16), ForeignKey("currencies.ccy"), primary_key=True),
    Column("precision", Integer, nullable=False),
    Column("stake_enabled", Boolean, nullable=False),
    Column("min_stake", Money, nullable=False),
    Column("deposit_usd_limit", Money, nullable=True),
    Column("unstake_mode", String(8), nullable=False),
    Column("daily_redemption_cap", Money, nullable=True),
    Column("unbonding_days", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("unstake_mode in ('instant', 'queued')", name="unstake_mode"),
)

#: The simple annual rate in basis points published for an accrual day (carried forward).
provider_rates = Table(
    "provider_rates",
    metadata,
    Column("provider_no", Integer, primary_key=True),
    Column("ccy", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("rate_bps", Money, nullable=False),
    Column("published_at", TS, nullable=False),
)

#: What a staker sees in history: Deposit, Redeem, RedeemPayment, Interest (and Admin* kinds).
#: Money moves only through the journal (``entry_id``); a Redeem row also tracks its payout.
provider_events = Table(
    "provider_events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("provider_no", Integer, ForeignKey("staking_providers.provider_no"), nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("type", String(24), nullable=False),
    Column("amount", Money, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    #: USD price of ``ccy`` when it happened (Interest: shown; Deposit: the notional's price).
    Column("price", Money, nullable=True),
    # Deposit: amount * price, for operators (the limit itself is summed exactly from amount and price)
    Column("usd_notional", Money, nullable=True),
    Column("rate_bps", Money, nullable=True),  # Interest: the rate it accrued at
    Column("accrual_day", String(10), nullable=True),  # Interest
    Column("redeem_id", _ID, ForeignKey("provider_events.id"), nullable=True),  # RedeemPayment
    Column("paid", Money, nullable=True),  # Redeem: paid back so far
    Column("scheduled", Money, nullable=True),  # Redeem (queued): scheduled so far
    Column("status", String(16), nullable=True),  # Redeem: pending | done
    CheckConstraint("type in ('Deposit', 'Redeem', 'RedeemPayment', 'Interest', 'AdminRedeem', "
                    "'AdminCreditAdjustment', 'AdminDebitAdjustment')", name="type"),
)
Index("ix_provider_events_user", provider_events.c.uid, provider_events.c.created_at, provider_events.c.id)
Index("ix_provider_events_queue", provider_events.c.provider_no, provider_events.c.ccy, provider_events.c.status,
      provider_events.c.id)
#: One Interest event per user, product and accrual day.
Index("uq_provider_events_interest", provider_events.c.uid, provider_events.c.provider_no, provider_events.c.ccy,
      provider_events.c.accrual_day, unique=True)

#: Parts of queued unstakes scheduled by a settlement run, paid ``unbonding_days`` later.
provider_redemption_parts = Table(
    "provider_redemption_parts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("redeem_id", _ID, ForeignKey("provider_events.id"), nullable=False),
    Column("provider_no", Integer, nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("scheduled_day", String(10), nullable=False),
    Column("deliver_day", String(10), nullable=False),
    Column("amount", Money, nullable=False),
    Column("payment_id", _ID, ForeignKey("provider_events.id"), nullable=True),
)
Index("ix_provider_redemption_parts_due", provider_redemption_parts.c.provider_no, provider_redemption_parts.c.ccy,
      provider_redemption_parts.c.deliver_day)

#: One interest run per (provider, currency, accrual day): its rate, totals and journal entry.
provider_accrual_runs = Table(
    "provider_accrual_runs",
    metadata,
    Column("provider_no", Integer, primary_key=True),
    Column("ccy", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("rate_bps", Money, nullable=True),
    Column("holders", Integer, nullable=False),
    Column("total", Money, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("ran_at", TS, nullable=False),
)

# -- non-disclosed broker (seed 004) -------------------------------------------------------

#: Master accounts the operator made ND brokers. ``level`` sets the default maximum number of
#: sub-accounts (``broker/rules.py``); ``max_sub_accts`` overrides it when set.
brokers = Table(
    "brokers",
    metadata,
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("level", Integer, nullable=False),
    Column("max_sub_accts", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("level >= 1", name="level"),
)

#: IPs a broker reported for a sub-account (``register`` at creation, ``report`` later).
sub_account_ips = Table(
    "sub_account_ips",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("reported_at", TS, nullable=False),
    CheckConstraint("kind in ('register', 'report')", name="kind"),
)
Index("ix_sub_account_ips_uid", sub_account_ips.c.uid, sub_account_ips.c.reported_at)

#: Every trading-fee change a broker ever set, append-only, so that "which change applied at
#: time t" is a lookup. ``uid`` NULL: the broker's default for all its sub-accounts. NULL scope
#: columns mean "any". ``chg_taker``/``chg_maker`` NULL: that side not changed by this setting.
fee_rate_settings = Table(
    "fee_rate_settings",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=True),
    Column("inst_type", String(8), nullable=True),
    Column("quote_ccy_type", Integer, nullable=True),
    Column("mgn_type", Integer, nullable=True),
    Column("chg_type", String(10), nullable=False),
    Column("chg_taker", Money, nullable=True),
    Column("chg_maker", Money, nullable=True),
    Column("eff_date", String(8), nullable=False),  # YYYYMMDD (HKT) it takes effect
    Column("effective_at", TS, nullable=False),  # 00:00 HKT of eff_date
    Column("created_at", TS, nullable=False),
    CheckConstraint("chg_type in ('absolute', 'percentage')", name="chg_type"),
)
Index("ix_fee_rate_settings_uid", fee_rate_settings.c.uid, fee_rate_settings.c.effective_at)
Index("ix_fee_rate_settings_broker", fee_rate_settings.c.broker_uid, fee_rate_settings.c.effective_at)

#: Deposit addresses. ``tag`` is the memo/tag of chains that need one ("" otherwise): chains
#: with tags share one address and tell users apart by the tag.
deposit_addresses = Table(
    "deposit_addresses",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("chain", String(48), nullable=False),
    Column("addr", String(128), nullable=False),
    Column("tag", String(32), nullable=False),
    Column("addr_type", Integer, nullable=False),  # 1 regular, 2 SegWit
    Column("created_at", TS, nullable=False),
    UniqueConstraint("chain", "addr", "tag", name="uq_deposit_addresses_chain_addr_tag"),
)
Index("ix_deposit_addresses_uid", deposit_addresses.c.uid, deposit_addresses.c.ccy, deposit_addresses.c.id)

#: Withdrawals. Funds (amount + fee) are held in the funding account's locked bucket by
#: ``hold_entry_id`` until the final entry pays them out (success) or returns them
#: (failed / canceled). ``next_at``: when the chain simulator moves it next (NULL when final).
withdrawals = Table(
    "withdrawals",
    metadata,
    Column("wd_id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("client_id", String(32), nullable=True),
    Column("ccy", String(16), nullable=False),
    Column("chain", String(48), nullable=False),
    Column("amt", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("fee_ccy", String(16), nullable=False),
    Column("dest", Integer, nullable=False),  # 3 internal, 4 on-chain
    Column("to_addr", String(128), nullable=False),
    Column("tag", String(64), nullable=False, default=""),
    Column("area_code", String(8), nullable=False, default=""),
    Column("to_uid", String(20), nullable=True),  # internal: the receiving user
    Column("state", Integer, nullable=False),
    Column("tx_id", String(128), nullable=False, default=""),
    Column("confirmations", Integer, nullable=False, default=0),
    Column("required_confirmations", Integer, nullable=False, default=0),
    Column("block_seconds", Integer, nullable=False, default=0),
    Column("next_at", TS, nullable=True),
    Column("note", Text, nullable=False, default=""),
    Column("hold_entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("final_entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("broadcast_at", TS, nullable=True),
    Column("completed_at", TS, nullable=True),
    UniqueConstraint("uid", "client_id", name="uq_withdrawals_uid_client_id"),
    CheckConstraint("dest in (3, 4)", name="dest"),
)
Index("ix_withdrawals_uid_time", withdrawals.c.uid, withdrawals.c.created_at)
Index("ix_withdrawals_next", withdrawals.c.next_at)
Index("ix_deposits_next", deposits.c.next_at)

# -- spot market (trading/) --------------------------------------------------------------------

#: The index price path of each instrument: the sandbox's seeded walk (start price, annual
#: volatility and drift, seed) and the synthetic book around the index (full spread in basis
#: points per level, levels per side, base size of the first level).
price_paths = Table(
    "price_paths",
    metadata,
    Column("inst_id", String(32), ForeignKey("instruments.inst_id"), primary_key=True),
    Column("start_px", Money, nullable=False),
    Column("vol", Money, nullable=False),
    Column("drift", Money, nullable=False),
    Column("seed", String(64), nullable=False),
    Column("walk", Boolean, nullable=False),  # the sandbox moves it (production: pushed prices only)
    #: Every minute that ended by this moment has its candle (the walk is computed when needed).
    Column("priced_until", TS, nullable=False),
    Column("spread_bp", Money, nullable=False),
    Column("book_levels", Integer, nullable=False),
    Column("level_sz", Money, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: One-minute candles of each instrument's index price. ``ts`` is the minute's start (Unix ms);
#: ``last_at`` is when its newest price point was set (a step, a pin or a push: the staleness guard
#: reads it).
index_candles = Table(
    "index_candles",
    metadata,
    Column("inst_id", String(32), ForeignKey("instruments.inst_id"), primary_key=True),
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("o", Money, nullable=False),
    Column("h", Money, nullable=False),
    Column("l", Money, nullable=False),
    Column("c", Money, nullable=False),
    Column("last_at", TS, nullable=False),
)

#: How far the market has been stepped: every minute that ended by ``stepped_until`` has its
#: index price and its resting orders matched (one row; claimed by a conditional update).
market_state = Table(
    "market_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stepped_until", TS, nullable=False),
)

#: Fee levels (``Lv1``, ``VIP1``..``VIP8``): base taker and maker rates as fractions (0.001 = 0.1 %).
fee_levels = Table(
    "fee_levels",
    metadata,
    Column("level", String(8), primary_key=True),
    Column("taker", Money, nullable=False),
    Column("maker", Money, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: The fee level the operator set for an account (absent: ``Lv1``).
account_fee_levels = Table(
    "account_fee_levels",
    metadata,
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("level", String(8), ForeignKey("fee_levels.level"), nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: Spot orders. ``locked`` is what the order still holds in the trading account's locked bucket
#: (in ``lock_ccy``); it is zero once the order is filled or canceled. ``auth`` says how the order
#: was authenticated (``api`` key, later ``oauth``), ``api_key`` which key: FD broker attribution.
orders = Table(
    "orders",
    metadata,
    Column("ord_id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("inst_id", String(32), ForeignKey("instruments.inst_id"), nullable=False),
    Column("cl_ord_id", String(32), nullable=False),
    Column("tag", String(16), nullable=False),
    Column("side", String(4), nullable=False),
    Column("ord_type", String(10), nullable=False),
    Column("td_mode", String(8), nullable=False),
    Column("tgt_ccy", String(10), nullable=False),
    Column("px", Money, nullable=True),
    Column("sz", Money, nullable=False),
    Column("state", String(16), nullable=False),
    Column("lock_ccy", String(16), nullable=False),
    Column("locked", Money, nullable=False),
    Column("acc_fill_sz", Money, nullable=False),
    Column("avg_px", Money, nullable=True),
    Column("fee", Money, nullable=False),
    Column("fee_ccy", String(16), nullable=False),
    Column("auth", String(8), nullable=False),
    Column("api_key", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("side in ('buy', 'sell')", name="side"),
    CheckConstraint("state in ('live', 'filled', 'canceled')", name="state"),
)
Index("ix_orders_uid_id", orders.c.uid, orders.c.ord_id)
Index("ix_orders_uid_time", orders.c.uid, orders.c.created_at)
Index("ix_orders_state_inst", orders.c.state, orders.c.inst_id)
#: A client order id is unique among an account's live orders (conventions §6.10).
Index("uq_orders_live_cl_ord_id", orders.c.uid, orders.c.cl_ord_id, unique=True,
      sqlite_where=(orders.c.state == "live") & (orders.c.cl_ord_id != ""),
      postgresql_where=(orders.c.state == "live") & (orders.c.cl_ord_id != ""))

#: Fills (one per order here: the platform fills orders fully). ``fee`` (in ``fee_ccy``, the
#: currency received) = ``base_fee`` + ``markup_fee``; ``credit_fee`` of it was paid by contract
#: credits (the base fee first), the rest in money. The ``*_usdt`` columns value the fill at its
#: index price for rebates: ``fee_usdt`` the whole fee, ``net_fee_usdt`` the base fee paid in money
#: and ``markup_usdt`` the markup paid in money (spec 5's netFee and markupFee).
fills = Table(
    "fills",
    metadata,
    Column("trade_id", _ID, primary_key=True, autoincrement=True),
    Column("ord_id", _ID, ForeignKey("orders.ord_id"), nullable=False, unique=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=True),
    Column("inst_id", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("tag", String(16), nullable=False),
    Column("exec_type", String(1), nullable=False),
    Column("fill_px", Money, nullable=False),
    Column("fill_sz", Money, nullable=False),
    Column("quote_amt", Money, nullable=False),
    Column("idx_px", Money, nullable=False),
    Column("fee_ccy", String(16), nullable=False),
    Column("fee_rate", Money, nullable=False),
    Column("base_rate", Money, nullable=False),
    Column("fee", Money, nullable=False),
    Column("base_fee", Money, nullable=False),
    Column("markup_fee", Money, nullable=False),
    Column("credit_fee", Money, nullable=False),
    Column("amt_usdt", Money, nullable=False),
    Column("fee_usdt", Money, nullable=False),
    Column("net_fee_usdt", Money, nullable=False),
    Column("markup_usdt", Money, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=False),
    Column("ts", TS, nullable=False),
    CheckConstraint("exec_type in ('T', 'M')", name="exec_type"),
)
Index("ix_fills_uid", fills.c.uid, fills.c.trade_id)
Index("ix_fills_broker_ts", fills.c.broker_uid, fills.c.ts)

#: Contract credits (ND): trading-fee vouchers of ``amt`` ``ccy`` granted to a sub-account.
contract_credits = Table(
    "contract_credits",
    metadata,
    Column("credit_id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("ccy", String(16), nullable=False),
    Column("amt", Money, nullable=False),
    Column("used", Money, nullable=False),
    Column("state", String(12), nullable=False),
    Column("activate_exp_at", TS, nullable=False),
    Column("valid_period_ms", BigInteger, nullable=False),
    Column("use_exp_at", TS, nullable=True),
    Column("invalid_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("state in ('unactivated', 'activated', 'expired', 'invalid')", name="state"),
)
Index("ix_contract_credits_uid", contract_credits.c.uid, contract_credits.c.credit_id)

# -- ND broker rebates (rebates/) ----------------------------------------------------------------

#: The rebate ratio of net fees per ND broker level (absent: ``rebates.rules.DEFAULT_RATIO``).
nd_rebate_ratios = Table(
    "nd_rebate_ratios",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("ratio", Money, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: The monthly rebate cap per fee level (VIP4 and above; absent: no cap), in USDT.
nd_rebate_caps = Table(
    "nd_rebate_caps",
    metadata,
    Column("fee_level", String(8), primary_key=True),
    Column("monthly_cap", Money, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: Sub-accounts the operator put in VIP fee-rate mode: they pay their VIP rate and earn their
#: broker no rebate.
nd_vip_fee_mode = Table(
    "nd_vip_fee_mode",
    metadata,
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("since", TS, nullable=False),
)

#: One record per (sub-account, HKT day of its fills), written by the daily run at 00:00 HKT of the
#: next day (``rebate_date``, ``rebate_time``); ``entry_id`` is the broker's payout of that day.
nd_rebate_records = Table(
    "nd_rebate_records",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("day", String(8), nullable=False),
    Column("rebate_date", String(8), nullable=False),
    Column("rebate_time", TS, nullable=False),
    Column("income", Money, nullable=False),
    Column("net_fee", Money, nullable=False),
    Column("markup_fee", Money, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    #: The broker level's ratio the run used (the detail file recomputes each fill's rebate with it).
    Column("ratio", Money, nullable=False, server_default="0.4"),
    UniqueConstraint("uid", "day", name="uq_nd_rebate_records_uid_day"),
)
Index("ix_nd_rebate_records_broker", nd_rebate_records.c.broker_uid, nd_rebate_records.c.rebate_date)

# -- FD brokers and rebate detail files (rebates/) ------------------------------------------------

#: Fully disclosed brokers: a master account whose ``code`` (16 characters) users put in their
#: orders' ``tag``. ``api``/``oauth`` are its broker types; ``ratio`` of a tagged fill's net fee is
#: the rebate, ``client_ratio`` of that goes to the user; ``expired``: its identification expired
#: (it earns nothing until the operator clears it).
fd_brokers = Table(
    "fd_brokers",
    metadata,
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("api", Boolean, nullable=False),
    Column("oauth", Boolean, nullable=False),
    Column("ratio", Money, nullable=False),
    Column("client_ratio", Money, nullable=False),
    Column("expired", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("api or oauth", name="a_type"),
)

#: Users the operator linked to an FD broker (invited by it): ``affiliated`` in its files.
fd_affiliations = Table(
    "fd_affiliations",
    metadata,
    Column("broker_uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("uid", String(20), ForeignKey("users.uid"), primary_key=True),
    Column("since", TS, nullable=False),
)

#: One record per (FD broker, broker type, user, HKT day of the user's tagged fills), written by
#: the daily run with ``ratio``/``client_ratio`` as they were; ``entry_id`` is the day's payout.
fd_rebate_records = Table(
    "fd_rebate_records",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("broker_type", String(8), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("day", String(8), nullable=False),
    Column("rebate_time", TS, nullable=False),
    Column("level", String(8), nullable=False),  # the user's fee level at the run
    Column("affiliated", Boolean, nullable=False),
    Column("ratio", Money, nullable=False),
    Column("client_ratio", Money, nullable=False),
    Column("net_fee", Money, nullable=False),
    Column("broker_rebate", Money, nullable=False),
    Column("user_rebate", Money, nullable=False),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    CheckConstraint("broker_type in ('api', 'oauth')", name="broker_type"),
    UniqueConstraint("broker_uid", "broker_type", "uid", "day", name="uq_fd_rebate_records_day"),
)
Index("ix_fd_rebate_records_uid_day", fd_rebate_records.c.uid, fd_rebate_records.c.day)

#: Rebate detail files (``rebate-per-orders``): one per (broker, kind, broker type, range), asked
#: for at ``requested_at`` (``cTime``), written by the ``rebate_files`` job (``state``
#: ``ongoing`` -> ``finished`` at ``finished_at``) into the files directory as ``name``.
rebate_files = Table(
    "rebate_files",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("kind", String(2), nullable=False),
    Column("broker_type", String(8), nullable=False),
    Column("begin_day", String(8), nullable=False),
    Column("end_day", String(8), nullable=False),
    Column("requested_at", TS, nullable=False),
    Column("state", String(8), nullable=False),
    Column("finished_at", TS, nullable=True),
    Column("name", String(64), nullable=True),
    Column("rows", Integer, nullable=True),
    CheckConstraint("kind in ('nd', 'fd')", name="kind"),
    CheckConstraint("state in ('ongoing', 'finished')", name="state"),
    UniqueConstraint("broker_uid", "kind", "broker_type", "begin_day", "end_day", name="uq_rebate_files_range"),
)
Index("ix_rebate_files_state", rebate_files.c.state, rebate_files.c.requested_at)

# -- Dual-currency deposits (dcd/) ----------------------------------------------------------------

#: DCD series the operator configures: a pair (``ccy``/``alt_ccy``, priced at the spot index
#: ``index_inst``), its tenors (days, comma-separated), its strike ladder (percent offsets from spot,
#: comma-separated; calls above spot, puts below), the strike tick, sizes and quotas per option type
#: (in the notional currency: ``ccy`` for calls, ``alt_ccy`` for puts), the implied volatility and
#: the platform's margin on the option premium.
dcd_series = Table(
    "dcd_series",
    metadata,
    Column("ccy", String(16), primary_key=True),
    Column("alt_ccy", String(16), primary_key=True),
    Column("uly", String(32), nullable=False),
    Column("index_inst", String(32), ForeignKey("instruments.inst_id"), nullable=False),
    Column("tenors", String(64), nullable=False),
    Column("strike_pcts", String(128), nullable=False),
    Column("strike_tick", Money, nullable=False),
    Column("call_min", Money, nullable=False),
    Column("call_max", Money, nullable=False),
    Column("call_step", Money, nullable=False),
    Column("call_quota", Money, nullable=False),
    Column("put_min", Money, nullable=False),
    Column("put_max", Money, nullable=False),
    Column("put_step", Money, nullable=False),
    Column("put_quota", Money, nullable=False),
    Column("vol", Money, nullable=False),
    Column("margin", Money, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: Listed DCD products (``BTC-USDT-YYMMDD-STK-C|P``); ``sold`` is the part of ``quota`` taken by
#: orders. Products stay after expiry (their orders point at them); the listing shows live ones.
dcd_products = Table(
    "dcd_products",
    metadata,
    Column("product_id", String(48), primary_key=True),
    Column("ccy", String(16), nullable=False),
    Column("alt_ccy", String(16), nullable=False),
    Column("uly", String(32), nullable=False),
    Column("index_inst", String(32), nullable=False),
    Column("opt_type", String(1), nullable=False),
    Column("stk", Money, nullable=False),
    Column("notional_ccy", String(16), nullable=False),
    Column("min_size", Money, nullable=False),
    Column("max_size", Money, nullable=False),
    Column("step_size", Money, nullable=False),
    Column("quota", Money, nullable=False),
    Column("sold", Money, nullable=False),
    Column("vol", Money, nullable=False),
    Column("margin", Money, nullable=False),
    Column("list_time", TS, nullable=False),
    Column("exp_time", TS, nullable=False),
    Column("sett_time", TS, nullable=False),
    Column("stop_trading_time", TS, nullable=False),
    CheckConstraint("opt_type in ('C', 'P')", name="opt_type"),
)
Index("ix_dcd_products_pair", dcd_products.c.ccy, dcd_products.c.alt_ccy, dcd_products.c.opt_type,
      dcd_products.c.exp_time)

#: Firm quotes: valid until ``expires_at``, used by at most one order (``used``).
dcd_quotes = Table(
    "dcd_quotes",
    metadata,
    Column("quote_id", String(40), primary_key=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("product_id", String(48), ForeignKey("dcd_products.product_id"), nullable=False),
    Column("cl_req_id", String(32), nullable=False),
    Column("notional", Money, nullable=False),
    Column("tag", String(16), nullable=False),
    Column("markup", Money, nullable=True),  # as sent; NULL: not sent
    Column("index_px", Money, nullable=False),
    Column("raw_yield", Money, nullable=False),
    Column("abs_yield", Money, nullable=False),
    Column("annual_yield", Money, nullable=False),
    Column("markup_yield", Money, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used", Boolean, nullable=False),
)
Index("uq_dcd_quotes_cl_req_id", dcd_quotes.c.uid, dcd_quotes.c.cl_req_id, unique=True,
      sqlite_where=dcd_quotes.c.cl_req_id != "", postgresql_where=dcd_quotes.c.cl_req_id != "")

#: DCD orders: ``live`` (the notional is in the platform's book ``s:dcd_book``), ``pending_settled``
#: (``sett_price`` fixed at ``exp_time``), ``settled`` (``sett_amt`` of ``sett_ccy`` paid at
#: ``sett_time``), ``rejected`` (refunded by the operator). ``broker_uid`` is paid the markup.
dcd_orders = Table(
    "dcd_orders",
    metadata,
    Column("ord_id", _ID, primary_key=True, autoincrement=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("quote_id", String(40), ForeignKey("dcd_quotes.quote_id"), nullable=False, unique=True),
    Column("cl_ord_id", String(32), nullable=False),
    Column("product_id", String(48), ForeignKey("dcd_products.product_id"), nullable=False),
    Column("notional", Money, nullable=False),
    Column("notional_ccy", String(16), nullable=False),
    Column("abs_yield", Money, nullable=False),
    Column("annual_yield", Money, nullable=False),
    Column("markup_yield", Money, nullable=False),
    Column("tag", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("exp_time", TS, nullable=False),
    Column("sett_time", TS, nullable=False),
    Column("sett_price", Money, nullable=True),
    Column("sett_amt", Money, nullable=True),
    Column("sett_ccy", String(16), nullable=True),
    Column("yield_amt", Money, nullable=True),
    Column("markup_amt", Money, nullable=True),
    Column("entry_id", _ID, ForeignKey("journal_entries.id"), nullable=False),
    Column("settle_entry_id", _ID, ForeignKey("journal_entries.id"), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("settled_at", TS, nullable=True),
    CheckConstraint("state in ('live', 'pending_settled', 'settled', 'rejected')", name="state"),
)
Index("ix_dcd_orders_uid", dcd_orders.c.uid, dcd_orders.c.ord_id)
Index("ix_dcd_orders_due", dcd_orders.c.state, dcd_orders.c.exp_time)
Index("ix_dcd_orders_product", dcd_orders.c.product_id, dcd_orders.c.state)
Index("uq_dcd_orders_cl_ord_id", dcd_orders.c.uid, dcd_orders.c.cl_ord_id, unique=True,
      sqlite_where=dcd_orders.c.cl_ord_id != "", postgresql_where=dcd_orders.c.cl_ord_id != "")

#: The listing's progress: ``listed_until`` is the 08:00 UTC boundary last listed.
dcd_state = Table(
    "dcd_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("listed_until", TS, nullable=True),
)

# --- web sign-in (oauth-and-web.md section 1) ---------------------------------------------

#: A user's web login: a name of its own and a scrypt hash of the password (never the password).
web_logins = Table(
    "web_logins",
    metadata,
    Column("login", String(32), primary_key=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

#: Server-side web sessions. The cookie holds a random token; only its SHA-256 is stored. A
#: session is a user's (``uid``) or an operator's (``uid`` NULL), ends at sign-out
#: (``ended_at``), after ``idle`` without a request, or at ``expires_at`` whatever happens.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=True),
    Column("role", String(8), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("seen_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("ended_at", TS, nullable=True),
    CheckConstraint("role in ('user', 'operator')", name="role"),
    CheckConstraint("(role = 'user') = (uid IS NOT NULL)", name="user_has_uid"),
)
Index("ix_web_sessions_uid", web_sessions.c.uid)

# --- OAuth 2.0 (oauth-and-web.md sections 3 and 4) ------------------------------------------

#: Clients the operator registered for an FD broker. ``secret_hash`` is NULL for a public client
#: (PKCE only); redirect URIs one per line, matched exactly; scopes space-separated.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("secret_hash", Text, nullable=True),
    Column("broker_uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("logo_url", String(256), nullable=False, default=""),
    Column("redirect_uris", Text, nullable=False),
    Column("scopes", String(32), nullable=False),
    Column("ips", Text, nullable=False, default=""),
    Column("fast_api", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
)
Index("ix_oauth_clients_broker", oauth_clients.c.broker_uid)

#: One user's consent to one client: the tokens issued under it, its device binding, its Fast API key.
oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(32), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("term_id", String(64), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("revoke_reason", String(16), nullable=True),
    #: The API key Fast API created at consent, and its passphrase sealed until the broker fetches it once.
    Column("fast_api_key", String(64), nullable=True),
    Column("fast_api_passphrase_enc", Text, nullable=True),
    Column("fast_api_fetched_at", TS, nullable=True),
)
Index("ix_oauth_grants_uid", oauth_grants.c.uid)

#: Authorization codes (only the SHA-256 stored): single use, 10 minutes; a reused code revokes
#: the grant it produced.
oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(32), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("uid", String(20), ForeignKey("users.uid"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", String(32), nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(8), nullable=True),
    Column("fast_api", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
    Column("grant_id", Integer, ForeignKey("oauth_grants.id"), nullable=True),
)

#: Token pairs (only SHA-256 hashes stored). A refresh supersedes the pair it used (both tokens
#: die at once); at most one pair of a grant is live (``superseded_at`` and ``revoked_at`` NULL).
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("grant_id", Integer, ForeignKey("oauth_grants.id"), nullable=False),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    Column("issued_at", TS, nullable=False),
    Column("access_expires_at", TS, nullable=False),
    Column("refresh_expires_at", TS, nullable=False),
    Column("superseded_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)
Index("ix_oauth_tokens_grant", oauth_tokens.c.grant_id)
