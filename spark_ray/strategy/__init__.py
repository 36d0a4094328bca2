"""The strategy interface, one for backtest, optimization and live trading.

``base`` (Strategy, NoParams), ``bars`` (Bar, BarData, fingerprint), ``context`` (what ``on_bar``
may call), ``builtins`` (sma_cross, rsi_reversion, donchian_breakout, buy_and_hold, random_entry),
``indicators`` (vectorized, no look-ahead), ``loader`` (strategies by name, parameters checked).
Plain Python: no Ray, no engine; the backtest and the executor both build on it.
"""
