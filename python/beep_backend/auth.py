"""Token comparison in constant time.

`hmac.compare_digest` is `_hashlib.compare_digest` (OpenSSL's CRYPTO_memcmp) when hmac can
import OpenSSL, and otherwise `_operator._compare_digest`; both compare in constant time.
We take `_operator._compare_digest` directly: the same guarantee without hmac's import of
hashlib and OpenSSL, which costs ~8 ms of cold start.
"""

try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # another interpreter: take the public name
    from hmac import compare_digest

__all__ = ["compare_digest"]
