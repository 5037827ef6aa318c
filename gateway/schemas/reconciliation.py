"""Reconciliation runs and their breaks, and the ledger they settle into."""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import Field

from gateway.schemas.common import BIGINT_MAX
from gateway.schemas.common import ApiModel

PspName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z][a-z0-9_-]*$",
        examples=["simulator"],
        description="Whose settlement report: a PSP configured here (default: the routing"
        " table's default PSP)",
    ),
]


class CreateReconciliationRequest(ApiModel):
    psp_batch: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-11-24"])] = (
        Field(description="Reconcile this settlement batch, fetched from the PSP")
    )
    psp: PspName | None = None


class StartReconciliationQuery(ApiModel):
    """For an uploaded report (text/csv), which PSP's it is."""

    psp: PspName | None = None


class Reconciliation(ApiModel):
    reconciliation_id: str
    psp: str = Field(description="The PSP whose settlement report this run reconciles")
    status: Literal["pending", "running", "completed", "failed"]
    source: Literal["upload", "psp"]
    batch: str | None
    line_count: int
    counts: dict[str, int] = Field(
        description="Lines per class (matched, missing_internally, amount_mismatch,"
        " currency_mismatch, duplicate, unconfirmed), missing_at_psp items, and how many"
        " were resolved"
    )
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class ReconciliationList(ApiModel):
    data: list[Reconciliation]


class ListBreaksQuery(ApiModel):
    class_: (
        Literal[
            "missing_internally",
            "missing_at_psp",
            "amount_mismatch",
            "currency_mismatch",
            "duplicate",
            "unconfirmed",
        ]
        | None
    ) = Field(None, alias="class")
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    starting_after: Annotated[int, Field(ge=0, le=BIGINT_MAX)] | None = None


class ReconciliationBreak(ApiModel):
    break_id: int
    line: int | None = Field(
        description="Line of the report (the header is line 1); none for missing_at_psp"
    )
    class_: str = Field(alias="class")
    record_type: str
    reference: str
    psp_reference: str | None
    reason: str | None


class ReconciliationBreakList(ApiModel):
    data: list[ReconciliationBreak]
    has_more: bool
    next_cursor: int | None


class LedgerBalance(ApiModel):
    currency: str
    account: str
    balance: int = Field(description="Debits minus credits, in minor units")


class LedgerBalances(ApiModel):
    data: list[LedgerBalance]


class LedgerPosting(ApiModel):
    account: str
    amount: int = Field(description="A debit is positive, a credit negative")
    currency: str


class LedgerEntry(ApiModel):
    entry_id: str
    psp: str = Field(description="The PSP that took or paid out the money this entry moves")
    source_type: str
    source_id: str
    payment_id: str | None
    description: str
    created_at: str
    postings: list[LedgerPosting]


class LedgerEntryList(ApiModel):
    data: list[LedgerEntry]
    has_more: bool
    next_cursor: str | None


LedgerMerchant = Annotated[
    str,
    Field(
        max_length=255,
        description="Whose ledger: an operator names the merchant; a merchant key reads its own",
    ),
]


class LedgerQuery(ApiModel):
    merchant_id: LedgerMerchant | None = None


class ListEntriesQuery(ApiModel):
    merchant_id: LedgerMerchant | None = None
    payment_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: str | None = None
