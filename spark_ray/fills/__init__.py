"""The fill model, one for the backtest engine and the paper broker.

``orders`` (kinds, sides, statuses, the backtest Order, trigger prices), ``costs`` (CostModel),
``model`` (:func:`~spark_ray.fills.model.fill`: size, slippage, fee, lot step, minimum notional),
``trades`` (ClosedTrade), ``conventions`` (the rules in words, for reports). Plain Python.
"""
