"""`mcrm predict clv`: fit BG/NBD + Gamma-Gamma, store a prediction run, print customers."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from mcrm.cli.options import AsOfOpt, FormatOpt, OutOpt, RawOpt, as_of, state, workspace

app = typer.Typer(
    no_args_is_help=True,
    help="Predictions from the purchase history: customer lifetime value (BG/NBD + Gamma-Gamma).",
)

HORIZON_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([dw])$")


def horizon_days(text: str) -> float:
    """`365d` / `52w` -> days; anything else is a usage error that says what is accepted."""
    from mcrm.errors import UsageError

    m = HORIZON_RE.match(text.strip().lower())
    if not m:
        hint = "e.g. 365d or 52w (days or weeks)"
        if re.match(r"^\d+\s*(m|mo|month|months|y|yr|year|years)$", text.strip().lower()):
            hint = "months and years vary in length: write days or weeks, e.g. 360d or 52w"
        raise UsageError(f"--horizon: cannot read '{text}' as a duration", hint=hint)
    n = float(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if n <= 0:
        raise UsageError(f"--horizon must be longer than 0 days, found '{text}'")
    return n


@app.command("clv")
def clv(
    ctx: typer.Context,
    horizon: Annotated[
        str,
        typer.Option(
            "--horizon",
            envvar="MCRM_PREDICT_HORIZON",
            help="How far ahead: days or weeks (365d, 52w). CLV sums 30-day months.",
        ),
    ] = "365d",
    discount: Annotated[
        float,
        typer.Option(
            "--discount",
            envvar="MCRM_PREDICT_DISCOUNT",
            help="Annual discount rate as a fraction (0.1 = 10% a year; 0 = none); applied "
            "monthly as (1 + d)^(1/12) - 1.",
        ),
    ] = 0.1,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Print only the N customers with the highest CLV."),
    ] = None,
    as_of_: AsOfOpt = None,
    fmt: FormatOpt = None,
    out: OutOpt = None,
    raw: RawOpt = False,
) -> int:
    """Fit BG/NBD and Gamma-Gamma on paid purchases, store a prediction run and print one row
    per customer (highest CLV first): frequency, recency and T in days, mean repeat spend,
    P(alive), expected purchases and average order value over the horizon, and CLV in the
    base currency. Fitted parameters and a summary go to stderr. P(alive) is 1 for one-time
    buyers: in BG/NBD a customer can only drop out after a repeat purchase."""
    from mcrm.output import console, resolve_format, write_rows
    from mcrm.predict.run import predict_clv, prediction_rows

    days = horizon_days(horizon)
    ws = workspace(ctx)
    fmt_ = resolve_format(fmt, out)
    run = predict_clv(ws, days, discount, as_of(ctx, as_of_))
    err = console()
    for w in run.warnings:
        err.print(f"warning: {w}", markup=False)
    if not state(ctx).quiet:
        bg, gg, t = run.bgnbd, run.gamma_gamma, run.totals
        cur = ws.settings.base_currency
        err.print(
            f"run {run.run_id} as of {run.as_of:%Y-%m-%dT%H:%M:%SZ}: {run.customers} customers, "
            f"{run.repeaters} with repeat purchases; horizon {run.horizon_days:g} days, "
            f"discount {run.discount_annual:g}/year ({run.discount_monthly:.5f}/month)",
            markup=False,
        )
        err.print(
            f"BG/NBD (time in {run.unit}): r={bg.r:.4g} alpha={bg.alpha:.4g} a={bg.a:.4g} "
            f"b={bg.b:.4g}, log-likelihood {bg.loglik:.2f}",
            markup=False,
        )
        err.print(
            f"Gamma-Gamma ({gg.customers} repeaters): p={gg.p:.4g} q={gg.q:.4g} "
            f"gamma={gg.gamma:.4g}, log-likelihood {gg.loglik:.2f}; population mean order "
            f"value {gg.population_mean:.2f} {cur}",
            markup=False,
        )
        err.print(
            f"expected purchases in the horizon: {t['expected_purchases']:.1f} in total, "
            f"{t['new_customer_expected_purchases']:.3f} for a new customer; mean P(alive) of "
            f"repeat customers {t['mean_p_alive_repeaters']:.3f} (one-time buyers are 1 by "
            f"the model); CLV {t['clv']:.2f} {cur} in total, {t['mean_clv']:.2f} per customer",
            markup=False,
        )
    write_rows(prediction_rows(ws, run.run_id, limit), fmt_, out, raw)
    return 0
