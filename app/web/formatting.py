"""How numbers look on the analyst pages (one place, so tests can format the same way)."""

from __future__ import annotations

from datetime import UTC, datetime

DASH = "\u2014"


def num(value: float | int | None) -> str:
    """A count as is; other numbers with 4 significant digits; ``None`` as a dash.

    Examples:
        >>> num(5012), num(0.101234), num(None), num(12345.678)
        ('5012', '0.1012', '—', '12,345.7')
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def pct(value: float | None) -> str:
    """A relative lift as a signed percentage.

    Examples:
        >>> pct(0.2671), pct(-0.05), pct(None)
        ('+26.71%', '-5.00%', '—')
    """
    return DASH if value is None else f"{value * 100:+.2f}%"


def pval(value: float | None) -> str:
    """A p-value: 3 significant digits, tiny ones in scientific notation.

    Examples:
        >>> pval(0.04123), pval(2.1e-07), pval(1.0)
        ('0.0412', '2.1e-07', '1')
    """
    if value is None:
        return DASH
    return f"{value:.3g}"


def when(ts: float, unit: str = "day") -> str:
    """A timestamp (epoch seconds, UTC) as a date, or date and time for finer looks.

    Examples:
        >>> when(0.0), when(3600.0, "hour"), when(300.0, "5 minutes")
        ('1970-01-01', '01-01 01:00', '01-01 00:05')
    """
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if unit == "day":
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%m-%d %H:%M")
