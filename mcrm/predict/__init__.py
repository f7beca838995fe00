"""CLV prediction (SPEC §7.1): BG/NBD for the purchase process, Gamma-Gamma for spend.

- `summary` — the BTYD inputs (analytics reference §2) as one DuckDB query over paid orders;
- `models` — the two models in numpy/scipy: log-space likelihoods with analytic gradients,
  fitted on customers grouped by identical (x, t_x, T), and the predictions (P(alive), E[X(t)],
  E[Y(t) | ·], E[M], discounted CLV) of analytics reference §3-§4;
- `run` — the `mcrm predict clv` pipeline: summary, fits, predictions, stored as a run.
"""
