"""The approval format and its check, between the optimizer and live trading.

``rules`` (RiskRules, the review's thresholds), ``approved`` (approved.json: ``approve``,
``check``, ``sha256_file``). Plain files and hashes, no backtest and no Ray: tune writes
approvals, execution and chaos check them, both importing downward.
"""
