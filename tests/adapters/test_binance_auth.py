"""The shared signer reproduces Binance's documented HMAC example and never writes 1e-08."""

from spark_ray.adapters.binance.auth import sign, signed_query, verify

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
             "&recvWindow=5000&timestamp=1499827319559")
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_documented_example() -> None:
    assert sign(DOC_QUERY, DOC_SECRET) == DOC_SIGNATURE
    assert verify(DOC_QUERY, DOC_SIGNATURE.upper(), DOC_SECRET)
    assert not verify(DOC_QUERY + "0", DOC_SIGNATURE, DOC_SECRET)


def test_signed_query_matches_documented_example() -> None:
    q = signed_query({"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                      "quantity": 1, "price": 0.1}, DOC_SECRET, timestamp_ms=1499827319559)
    assert q == f"{DOC_QUERY}&signature={DOC_SIGNATURE}"


def test_floats_are_plain_decimals() -> None:
    q = signed_query({"quantity": 1e-8, "price": 2.0, "skip": None}, "s", timestamp_ms=1,
                     recv_window_ms=None)
    assert q.startswith("quantity=0.00000001&price=2&timestamp=1&signature=")
