"""Python client for Tailor: rank, reward (batched in the background), activate.

>>> from tailor_client import TailorClient
>>> client = TailorClient("http://localhost:8000", "tlr_...", "homepage-hero",
...                       fallback_action="hero-1")  # doctest: +SKIP
"""

from tailor_client.client import RankResult, TailorClient
from tailor_client.errors import (
    RewardQueueFull,
    TailorError,
    TailorRequestError,
    TailorUnavailable,
)
from tailor_client.transport import RetryPolicy

__all__ = ["RankResult", "RetryPolicy", "RewardQueueFull", "TailorClient", "TailorError",
           "TailorRequestError", "TailorUnavailable"]
__version__ = "0.1.0"
