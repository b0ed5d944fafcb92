"""HMAC request signing in the shared REST client: the documented example, canonical form, and
agreement with a signer written from the document alone."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.e2e.vang_signing import vang_headers
from ttcs.adapters.signing import HmacSigner, canonical_query, canonical_request, hmac_signature
from ttcs.plugins.vang.protocol import SCHEME

EXAMPLE_SECRET = SecretStr("vang-example-secret")


def test_the_documented_examples_sign_to_the_documented_signatures() -> None:
    # docs/plugins/vang.md, "Signing": these values are copied from there
    volume = canonical_request(SCHEME, "PUT", "/api/v1/volume", [], "VT-0001", 1767225600,
                               "n0nce-EXAMPLE-0001", b'{"level": 40}')
    assert volume == ("VANG1-HMAC-SHA256\nPUT\n/api/v1/volume\n\nVT-0001\n1767225600\n"
                      "n0nce-EXAMPLE-0001\n"
                      "965d17f058aa71c239990c069576eb81d237eec820c68b09635b09cbd033fced")
    assert hmac_signature(EXAMPLE_SECRET, volume) == (
        "52b96efcb20546ba411e46d5f4b3ad5f9e4e523243f66e5fb84d7a3a59ddb804")
    log = canonical_request(SCHEME, "GET", "/api/v1/playlog", {"limit": "50", "after": "12"}
                            .items(), "VT-0001", 1767225600, "n0nce-EXAMPLE-0001", b"")
    assert log.splitlines()[3] == "after=12&limit=50"
    assert hmac_signature(EXAMPLE_SECRET, log) == (
        "67fd4b3a8ee8ce11be006c9e9570fd1587d398f04cf0c9d1eded0b1f3db75bdf")


def test_the_query_is_sorted_and_percent_encoded() -> None:
    assert canonical_query([("b", "2"), ("a", "x y"), ("a", "ă/&")]) == (
        "a=x%20y&a=%C4%83%2F%26&b=2")


def test_every_request_gets_a_fresh_nonce_and_names_its_target_when_known() -> None:
    signer = HmacSigner(SCHEME, "hub", EXAMPLE_SECRET, target="VT-0001", clock=lambda: 1e9)
    first, second = (signer.headers("GET", "/api/v1/status", {}, b"") for _ in range(2))
    assert first["X-Vang-Nonce"] != second["X-Vang-Nonce"]
    assert first["X-Vang-Signature"] != second["X-Vang-Signature"]
    assert (first["X-Vang-Timestamp"], first["X-Vang-Device"]) == ("1000000000", "VT-0001")
    probing = HmacSigner(SCHEME, "hub", EXAMPLE_SECRET)  # serial not known yet
    assert "X-Vang-Device" not in probing.headers("GET", "/api/v1/device", {}, b"")


_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.~ /&=?%ăêô", max_size=20)


@given(path=st.lists(st.text(alphabet=string.ascii_lowercase + "-_ă", min_size=1,
                             max_size=8), min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
       query=st.dictionaries(_text.filter(bool), _text, max_size=4),
       body=st.binary(max_size=200), method=st.sampled_from(["GET", "PUT", "POST"]))
def test_the_adapter_agrees_with_a_signer_written_from_the_document(
        path: str, query: dict[str, str], body: bytes, method: str) -> None:
    signer = HmacSigner(SCHEME, "hub", EXAMPLE_SECRET, target="VT-0001", clock=lambda: 1.7e9)
    ours = signer.headers(method, path, query, body)
    theirs = vang_headers("vang-example-secret", method, path, query=query, body=body,
                          target="VT-0001", timestamp=1_700_000_000,
                          nonce=ours["X-Vang-Nonce"])
    assert ours == theirs
