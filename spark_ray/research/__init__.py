"""Research you can trust: statistics that account for how many strategies were tried
(probabilistic and deflated Sharpe ratios, minimum track record length, probability of backtest
overfitting), bootstrap confidence intervals, and the look-ahead detector. Plain NumPy over
returns and backtests, no Ray: the optimizer (``spark_ray.tune``) and the approval gate call
them."""
