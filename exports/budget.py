"""What a forecast gives finance for the budget (docs/forecast.md): rows by exercice, imputation,
customer and catalogue line, as CSV; what each customer pays under the current barème and under
a draft; the revenue chart (SVG or PNG, the same bytes for the same forecast)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventstore.app import LedgerApplication


def compare(current: Iterable, drafted: Iterable) -> list[dict[str, str]]:
    """Per customer: what it pays under the current barème and under the draft."""
    from ledger.money import format_amount

    totals: dict[str, list[Decimal]] = {}
    for index, charges in enumerate((current, drafted)):
        for charge in charges:
            totals.setdefault(charge.customer, [Decimal(0), Decimal(0)])[index] += charge.amount
    return [{"customer": customer, "current": format_amount(a), "draft": format_amount(b),
             "difference": format_amount(b - a)} for customer, (a, b) in sorted(totals.items())]


BUDGET_COLUMNS = ("exercice", "nature", "fonction", "section", "customer", "category", "line",
                  "amount")


def budget_rows(app: LedgerApplication, charges: Iterable, categories: dict[str, str] | None
                ) -> list[dict[str, str]]:
    """One row per exercice, imputation, customer and catalogue line: the layout of
    docs/forecast.md (nature and fonction from the Hélios profile's imputations)."""
    from exports.pes_export import treasury_state
    from ledger.money import format_amount
    from ledger.titres import PESRefused, imputation_for

    profile = treasury_state(app).profile
    totals: dict[tuple[str, ...], Decimal] = {}
    for charge in charges:
        nature = fonction = ""
        if profile is not None:
            try:
                imputation = imputation_for({"line": charge.line, "schedule": charge.schedule,
                                             "kind": charge.kind}, profile["imputations"], "")
                nature, fonction = imputation.nature, imputation.fonction or ""
            except PESRefused:
                pass
        slot = (str(charge.charge_date.year), nature, fonction, charge.budget, charge.customer,
                (categories or {}).get(charge.customer, ""), charge.line)
        totals[slot] = totals.get(slot, Decimal(0)) + charge.amount
    return [dict(zip(BUDGET_COLUMNS, (*slot, format_amount(amount))))
            for slot, amount in sorted(totals.items())]


def write_csv(path: str, rows: list[dict[str, str]], columns: Sequence[str] = BUDGET_COLUMNS
               ) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    Path(path).write_text(out.getvalue(), encoding="utf-8")


def plot_revenue(path: str, current: list, drafted: list | None, by: str, key: str,
                 categories: dict[str, str] | None) -> dict[str, Any]:
    """Revenue per period, stacked by ``key`` (line or category); with a draft, the current
    and draft bars side by side. Returns the series drawn (for checks)."""
    import matplotlib

    matplotlib.use("Agg")
    # SVG element ids are random unless salted: the same forecast must draw the same file.
    matplotlib.rcParams["svg.hashsalt"] = "territorial-ledger"
    import matplotlib.pyplot as plt

    from projections.forecast import group

    stack_key = "category" if key == "category" else "line"
    sets = [("barème actuel", current)] + ([("projet de barème", drafted)] if drafted else [])
    periods = sorted({row["period"] for _, charges in sets
                      for row in group(charges, by, stack_key, categories)})
    names = sorted({row[stack_key] for _, charges in sets
                    for row in group(charges, by, stack_key, categories)})
    figure, axes = plt.subplots(figsize=(10, 5), dpi=100)
    width = 0.8 / len(sets)
    series: dict[str, dict[str, list[float]]] = {}
    colours = plt.get_cmap("tab20")
    for index, (label, charges) in enumerate(sets):
        values = {name: [0.0] * len(periods) for name in names}
        for row in group(charges, by, stack_key, categories):
            values[row[stack_key]][periods.index(row["period"])] = float(row["amount"])
        bottom = [0.0] * len(periods)
        positions = [p + (index - (len(sets) - 1) / 2) * width for p in range(len(periods))]
        for number, name in enumerate(names):
            axes.bar(positions, values[name], width, bottom=bottom, color=colours(number % 20),
                     label=name if index == 0 else None,
                     hatch="//" if index == 1 else None, edgecolor="white")
            bottom = [b + v for b, v in zip(bottom, values[name])]
        series[label] = values
    axes.set_xticks(range(len(periods)), periods, rotation=60 if by == "month" else 0,
                    fontsize=7)
    axes.set_ylabel("€ HT")
    title = "Recettes prévues par " + ("mois" if by == "month" else "année")
    if drafted:
        title += " — barème actuel (plein) et projet (hachuré)"
    axes.set_title(title)
    axes.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    # No clock in the file: an SVG or PNG of the same forecast has the same bytes.
    figure.savefig(path, metadata={"Date": None} if path.endswith(".svg") else
                   {"Software": None})
    plt.close(figure)
    return {"periods": periods, "names": names, "series": series}
