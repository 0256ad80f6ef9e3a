"""What calls cost: the price table (`prices`) and the cost of each usage report (`cost`).

Pure, like `policy`: the table is read and validated once at start-up
(`Settings.prices`, from the shipped `prices.toml` and `PRICES_FILE`), and
costs are functions of a usage object and a model's entry, in exact
pico-dollars (`Cost`), rounded to micro-dollars only when shown.
"""

from service.billing.cost import Cost, live_cost, response_cost, transcription_cost
from service.billing.prices import (
    DurationPrice,
    LivePrices,
    ModelPrice,
    PriceTable,
    TokenPrices,
    load_prices,
)

__all__ = [
    "Cost",
    "DurationPrice",
    "LivePrices",
    "ModelPrice",
    "PriceTable",
    "TokenPrices",
    "live_cost",
    "load_prices",
    "response_cost",
    "transcription_cost",
]
