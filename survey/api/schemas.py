"""What the JSON API takes and returns (validated by pydantic; documented in the OpenAPI schema)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel, ConfigDict, Field

UnitCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$", description="a unit's code")]


class TransactionRequest(BaseModel):
    """One completed transaction at a one-stop counter: should its receipt carry a survey code?"""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    wave: str = Field(min_length=1, max_length=60, description="the survey wave's code", examples=["2026"])
    unit: UnitCode
    field: str | None = Field(
        default=None, min_length=1, max_length=40, description="the procedure field's code (the stratum)"
    )
    transaction_ref: str = Field(
        min_length=1,
        max_length=200,
        description="the one-stop system's reference of the transaction (a dossier number); only a keyed hash "
        "of it is stored, and the same reference always gets the same answer",
    )
    qr: Literal["svg", "png"] | None = Field(default=None, description="also return the QR image (base64 for png)")


class TransactionDecision(BaseModel):
    selected: bool = Field(description="print a survey code on this receipt")
    probability: float = Field(description="the stratum's planned selection probability")
    repeated: bool = Field(description="this reference was asked about before: the first answer is repeated")
    code: str | None = Field(default=None, description="the one-time code, printed as XXXX-XXXX-XXXX-XXXX")
    url: str | None = Field(default=None, description="the address the QR code carries")
    expires_on: date | None = None
    qr_svg: str | None = None
    qr_png_base64: str | None = None


class BatchRequest(BaseModel):
    """A batch of one-time codes to print on receipts or slips."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    wave: str = Field(min_length=1, max_length=60)
    unit: UnitCode
    field: str | None = Field(default=None, min_length=1, max_length=40)
    count: int = Field(ge=1, le=1000, description="how many codes (at most 1000 per call)")


class IssuedCode(BaseModel):
    code: str
    url: str


class BatchResponse(BaseModel):
    wave: str
    unit: str
    field: str | None
    expires_on: date
    codes: list[IssuedCode]


class Problem(BaseModel):
    """An error, as RFC 9457 problem details: ``detail`` says what went wrong in plain words."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = Field(default=None, description="which fields are invalid, and why")


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers an operation can give, for the OpenAPI schema."""
    meaning = {
        401: "no API key, or an unknown or revoked one",
        403: "the key may not do this (its scopes or its unit subtree)",
        404: "no such wave, unit, field or level",
        409: "not possible now (a closed wave, a unit outside the wave, a reference used for another stratum)",
    }
    return {
        status: ResponseSpec(data_container=Problem, description=meaning[status], media_type="application/problem+json")
        for status in statuses
    }
