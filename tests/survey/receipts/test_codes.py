"""Receipt codes (Crockford base32 + Luhn mod 32), their hashes, and signed form tokens.

The check symbol is verified against an independent Luhn mod N oracle written here from the textbook
definition (validation form: factor 1 on the rightmost symbol, the weighted sum is 0 mod 32).
"""

from __future__ import annotations

import hashlib
import random
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.receipts.codes import (
    BadToken,
    ExpiredToken,
    FormToken,
    code_hash,
    new_receipt_code,
    normalise,
    pretty,
    sign_form_token,
    verify_form_token,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
N = len(CROCKFORD)
PRETTY_RE = re.compile(rf"^[{CROCKFORD}]{{4}}(-[{CROCKFORD}]{{4}}){{3}}$")


def luhn_valid(code: str) -> bool:
    """Luhn mod N validation, independent of survey.receipts.codes: double every second symbol from the right."""
    total = 0
    for i, ch in enumerate(reversed(code)):
        addend = CROCKFORD.index(ch) * (2 if i % 2 else 1)
        total += addend // N + addend % N
    return total % N == 0


def complete(body: str) -> str:
    """``body`` (15 symbols) plus the one check symbol that makes it valid for the oracle."""
    fits = [body + s for s in CROCKFORD if luhn_valid(body + s)]
    assert len(fits) == 1, f"Luhn mod {N} must give exactly one check symbol for {body}: {fits}"
    return fits[0]


FIXED_CODES = [
    complete("0" * 15),
    complete("Z" * 15),
    complete("0123456789ABCDE"),
    complete("FGHJKMNPQRSTVWX"),
    complete("01ABCDEFGH10XYZ"),
]


def swapped(code: str, i: int) -> str:
    return code[:i] + code[i + 1] + code[i] + code[i + 2 :]


# --- receipt codes ----------------------------------------------------------------------------------------


def test_new_code_is_16_crockford_symbols_with_a_valid_check_symbol() -> None:
    seen = set()
    for _ in range(200):
        code = new_receipt_code()
        assert len(code) == 16
        assert set(code) <= set(CROCKFORD), code
        assert luhn_valid(code), code
        assert normalise(code) == code
        seen.add(code)
    assert len(seen) == 200  # 75 random bits: no repeats


def test_generator_agrees_with_the_textbook_luhn_mod_32() -> None:
    for code in FIXED_CODES:
        assert normalise(code) == code


def test_pretty_is_four_groups_of_four_and_normalises_back() -> None:
    for code in [*FIXED_CODES, new_receipt_code()]:
        shown = pretty(code)
        assert PRETTY_RE.match(shown), shown
        assert shown.replace("-", "") == code
        assert normalise(shown) == code


def test_lowercase_spaces_and_hyphens_are_accepted() -> None:
    code = new_receipt_code()
    groups = pretty(code).split("-")
    for typed in [
        code.lower(),
        pretty(code).lower(),
        " ".join(groups),
        "  " + " ".join(groups).lower() + " \n",
        "-".join(code),
        "\t" + code + "\t",
        f"{groups[0]} - {groups[1]}-{groups[2]}  {groups[3]}",
    ]:
        assert normalise(typed) == code, repr(typed)


def test_aliases_o_i_l_are_read_as_0_and_1() -> None:
    code = complete("01ABCDEFGH10XYZ")
    assert "0" in code and "1" in code
    for typed in [
        code.replace("0", "O"),
        code.replace("0", "o"),
        code.replace("1", "I"),
        code.replace("1", "i"),
        code.replace("1", "L"),
        code.replace("1", "l"),
        pretty(code).replace("0", "o").replace("1", "l").lower(),
    ]:
        assert typed != code
        assert normalise(typed) == code, typed


@pytest.mark.parametrize("code", [*FIXED_CODES, new_receipt_code(), new_receipt_code()])
def test_every_single_symbol_substitution_is_rejected(code: str) -> None:
    """31 wrong symbols x 16 positions: the check symbol catches every one (what Luhn mod N promises)."""
    accepted = []
    tried = 0
    for pos in range(16):
        for sym in CROCKFORD:
            if sym == code[pos]:
                continue
            tried += 1
            typo = code[:pos] + sym + code[pos + 1 :]
            if normalise(typo) is not None:
                accepted.append(typo)
            # the typo is also rejected in the forms people really type
            assert normalise(pretty(typo).lower()) is None
    assert tried == 31 * 16
    assert accepted == []


def test_adjacent_transpositions_are_mostly_rejected() -> None:
    """Over many random codes; swaps of two equal symbols change nothing and are not counted."""
    swaps = 0
    caught = 0
    missed: set[tuple[str, str]] = set()
    for _ in range(2000):
        code = new_receipt_code()
        for i in range(15):  # includes swapping the last body symbol with the check symbol
            if code[i] == code[i + 1]:
                continue
            swaps += 1
            if normalise(swapped(code, i)) is None:
                caught += 1
            else:
                missed.add((code[i], code[i + 1]))
    share = caught / swaps
    assert share >= 0.95, f"only {share:.4f} of {swaps} adjacent transpositions rejected"
    # Luhn mod N's one blind spot is the pair (0, N-1), here "0" <-> "Z" (like 09 <-> 90 in decimal Luhn)
    assert missed <= {("0", "Z"), ("Z", "0")}, missed


def test_adjacent_transpositions_exhaustively_only_0_z_goes_undetected() -> None:
    """Every ordered pair of distinct symbols at every body position: 990 of 992 swaps are rejected."""
    base = "7KQ2M9XD4HTRZW3"
    for i in range(14):
        missed = []
        for a in CROCKFORD:
            for b in CROCKFORD:
                if a == b:
                    continue
                code = complete(base[:i] + a + b + base[i + 2 :])
                if normalise(swapped(code, i)) is not None:
                    missed.append(a + b)
        assert sorted(missed) == ["0Z", "Z0"], (i, missed)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "-",
        "ABC",
        "short-code",
        FIXED_CODES[0][:15],
        FIXED_CODES[0] + "0",
        FIXED_CODES[0] + FIXED_CODES[1],
        FIXED_CODES[2][:5] + "*" + FIXED_CODES[2][6:],
        FIXED_CODES[2][:5] + "é" + FIXED_CODES[2][6:],
        FIXED_CODES[2][:5] + "Ж" + FIXED_CODES[2][6:],
        FIXED_CODES[2][:5] + "\uff10" + FIXED_CODES[2][6:],  # full-width zero
        FIXED_CODES[2][:15] + "!",
        FIXED_CODES[2].replace("A", "_"),
        "http://testserver/r/" + FIXED_CODES[2],
    ],
)
def test_wrong_length_and_foreign_characters_give_none(typed: str) -> None:
    assert normalise(typed) is None


@given(st.one_of(st.builds(new_receipt_code), st.text(alphabet=CROCKFORD, min_size=15, max_size=15).map(complete)))
def test_property_pretty_lowercase_normalises_back(code: str) -> None:
    assert normalise(pretty(code).lower()) == code
    assert normalise(code) == code


@settings(max_examples=300)
@given(st.text())
def test_property_normalise_arbitrary_text(raw: str) -> None:
    result = normalise(raw)
    assert result is None or (len(result) == 16 and set(result) <= set(CROCKFORD) and luhn_valid(result))


@settings(max_examples=1000)
@given(st.text(alphabet=CROCKFORD + CROCKFORD.lower() + "oOiIlLuU -\t", min_size=14, max_size=24))
def test_property_normalise_code_like_text(raw: str) -> None:
    """Text close to real codes, so that a fair share of the examples are valid ones."""
    result = normalise(raw)
    if result is not None:
        assert len(result) == 16 and set(result) <= set(CROCKFORD)
        assert luhn_valid(result)
        assert normalise(result) == result


# --- code hashes ------------------------------------------------------------------------------------------


def test_code_hash_is_the_sha256_of_the_compact_code() -> None:
    for code in [*FIXED_CODES, new_receipt_code()]:
        expected = hashlib.sha256(code.encode("ascii")).hexdigest()
        assert code_hash(code) == expected
        assert len(expected) == 64 and set(expected) <= set(string.hexdigits.lower())
    # the hash is of the compact form only: callers must normalise first
    code = FIXED_CODES[3]
    assert code_hash(normalise(pretty(code).lower()) or "") == code_hash(code)
    assert code_hash(pretty(code)) != code_hash(code)
    assert code_hash(FIXED_CODES[0]) != code_hash(FIXED_CODES[1])


# --- form tokens ------------------------------------------------------------------------------------------

SECRET = "form-token-secret-" + "k" * 40
TARGET = "r:" + "ab" * 32
T0 = 1_760_000_000
MAX_AGE = 24 * 3600
B64URL = string.ascii_letters + string.digits + "-_"


def _sign(target: str = TARGET, *, secret: str = SECRET, now: float = T0) -> str:
    return sign_form_token(secret, target, now=now)


def _verify(token: str, target: str = TARGET, *, secret: str = SECRET, now: float = T0 + 60) -> FormToken:
    return verify_form_token(secret, target, token, max_age_s=MAX_AGE, now=now)


def _other_b64(ch: str) -> str:
    return "A" if ch != "A" else "B"


def test_form_token_round_trip() -> None:
    token = _sign()
    issued_s, nonce, mac = token.split(".")
    assert issued_s == str(T0)
    assert len(mac) == 24 and set(mac) <= set(B64URL) and set(nonce) <= set(B64URL)
    ft = _verify(token)
    assert isinstance(ft, FormToken)
    assert ft.target == TARGET
    assert ft.issued_at == T0
    assert ft.nonce == nonce
    assert ft.submission_key == hashlib.sha256(nonce.encode("ascii")).hexdigest()


def test_two_tokens_for_the_same_target_have_different_submission_keys() -> None:
    first, second = _sign(), _sign()
    assert first != second
    a, b = _verify(first), _verify(second)
    assert a.target == b.target == TARGET
    assert a.nonce != b.nonce
    assert a.submission_key != b.submission_key


def test_token_for_another_target_is_refused() -> None:
    token = _sign()
    for target in ["r:" + "cd" * 32, "c:" + "ab" * 32, TARGET + "x", TARGET[:-1], ""]:
        with pytest.raises(BadToken):
            _verify(token, target)


def test_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(BadToken):
        _verify(_sign(secret="another-secret-" + "q" * 40))
    with pytest.raises(BadToken):
        _verify(_sign(), secret=SECRET + "!")


def test_modified_nonce_signature_or_time_is_refused() -> None:
    token = _sign()
    issued_s, nonce, mac = token.split(".")
    tampered = [
        f"{issued_s}.{_other_b64(nonce[0])}{nonce[1:]}.{mac}",
        f"{issued_s}.{nonce[:-1]}{_other_b64(nonce[-1])}.{mac}",
        f"{issued_s}.{nonce}x.{mac}",
        f"{issued_s}..{mac}",
        f"{int(issued_s) + 3600}.{nonce}.{mac}",  # trying to extend its life
        f"0{issued_s}.{nonce}.{mac}",
        f"{issued_s}.{nonce}.",
        f"{issued_s}.{nonce}.{mac[:-1]}",
        f"{issued_s}.{nonce}.{mac}A",
    ]
    # every single-character change of the signature
    tampered += [f"{issued_s}.{nonce}.{mac[:i]}{_other_b64(mac[i])}{mac[i + 1 :]}" for i in range(len(mac))]
    for bad in tampered:
        assert bad != token
        with pytest.raises(BadToken):
            _verify(bad)


@pytest.mark.parametrize("junk", ["!", "=", "==", "\n", "*"])
def test_signature_with_junk_characters_is_refused(junk: str) -> None:
    token = _sign()
    with pytest.raises(BadToken):
        _verify(token + junk)


def test_old_and_future_tokens_expire() -> None:
    token = _sign()
    assert _verify(token, now=T0 + MAX_AGE).issued_at == T0  # exactly at the limit: still good
    with pytest.raises(ExpiredToken):
        _verify(token, now=T0 + MAX_AGE + 1)
    with pytest.raises(ExpiredToken):
        _verify(token, now=T0 + 30 * 24 * 3600)
    # a token from more than five minutes in the future (clock skew allowance) is refused too
    assert _verify(token, now=T0 - 300).issued_at == T0
    with pytest.raises(ExpiredToken):
        _verify(token, now=T0 - 301)


def test_tampered_old_token_is_bad_not_expired() -> None:
    issued_s, nonce, mac = _sign().split(".")
    with pytest.raises(BadToken):
        _verify(f"{issued_s}.{nonce}.{_other_b64(mac[0])}{mac[1:]}", now=T0 + MAX_AGE + 1)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "x.y.z",
        "1.2.3.4",
        ".",
        "..",
        "...",
        "1..",
        "-1.abc.def",
        "１２.abc.def",
        "²³.abc.def",
        "1.é.ü",
        "1.a.%%%%",
    ],
)
def test_malformed_tokens_raise_bad_token(token: str) -> None:
    with pytest.raises(BadToken):
        _verify(token)


@settings(max_examples=500)
@given(st.one_of(st.text(), st.text(alphabet=string.digits + B64URL + ".=!", max_size=60)))
def test_property_arbitrary_token_text_is_bad_token_only(token: str) -> None:
    with pytest.raises(BadToken):
        _verify(token)


def test_random_module_is_not_what_makes_codes() -> None:
    """Seeding the ``random`` module must not make codes predictable (they come from ``secrets``)."""
    random.seed(1)
    first = [new_receipt_code() for _ in range(3)]
    random.seed(1)
    second = [new_receipt_code() for _ in range(3)]
    assert first != second


def test_codes_pasted_with_dashes_or_odd_spaces_are_read() -> None:
    code = FIXED_CODES[0]
    for sep in ("\u2013", "\u2014", "\u00a0", "\t", " - ", "\u2212"):
        assert normalise(pretty(code).replace("-", sep)) == code, repr(sep)


def test_non_ascii_look_alikes_and_u_are_refused() -> None:
    code = FIXED_CODES[0]
    for ch in ("\u017f", "\u0131", "\u00df", "U", "u"):  # long s, dotless i, sharp s, and U (not in Crockford)
        assert normalise(code[:4] + ch + code[5:]) is None, repr(ch)
