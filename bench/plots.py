"""PNG plots of a suite run, rendered headless (matplotlib's Agg backend).

Throughput on log axes, one line (or bar) per implementation with the
min-max spread of its runs, and the memory-bandwidth pass drawn as the
limit line. Colours are fixed per implementation across plots.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

LIMIT = "bandwidth"
COLORS = {
    "kernel": "#1f77b4",
    "kernel_grouped": "#17becf",
    "kernel_consumption_only": "#9edae5",
    "rater_from_arrow": "#2ca02c",
    "api_split": "#2ca02c",
    "numpy": "#ff7f0e",
    "pyarrow": "#9467bd",
    "reference": "#d62728",
}
SHORT = {
    "kernel": "Cython kernel",
    "kernel_grouped": "Cython kernel, grouped input",
    "kernel_consumption_only": "kernel, consumption only",
    "rater_from_arrow": "Rater from Arrow",
    "api_split": "apportion.split (checked)",
    "numpy": "numpy",
    "pyarrow": "pyarrow.compute",
    "reference": "Decimal reference (sampled)",
    LIMIT: "memory-bandwidth pass (limit)",
}
DPI = 110


def _si(value: float, _position=None) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def _si_axis(axis) -> None:
    """SI labels on a log axis (after the data is drawn); minor ticks are
    labelled too when the axis spans less than a decade, which may hold no
    major tick at all."""
    axis.set_major_formatter(FuncFormatter(_si))
    low, high = sorted(axis.get_view_interval())
    if low > 0 and high / low < 10:
        axis.set_minor_formatter(FuncFormatter(_si))
        axis.set_tick_params(which="minor", labelsize=7)
    else:
        axis.set_minor_formatter(NullFormatter())


def _impls(points: list[dict]) -> list[str]:
    names: list[str] = []
    for point in points:
        for name in point["figures"]:
            if name not in names:
                names.append(name)
    return names


def _rate_range(f: dict) -> tuple[float, float]:
    return f["items"] / f["spread"]["max_s"], f["items"] / f["spread"]["min_s"]


def _finish(fig, ax, title: str, path: Path) -> None:
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a line
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def curve_plot(scenario: dict, path: Path) -> None:
    """Throughput against a numeric x on log-log axes, with the limit line."""
    points = [p for p in scenario["points"] if p["figures"]]
    unit = scenario["item_unit"]
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    for name in _impls(points):
        xs, ys, lo, hi = [], [], [], []
        for point in points:
            f = point["figures"].get(name)
            if f is None:
                continue
            xs.append(point["x"])
            ys.append(f["median"])
            low, high = _rate_range(f)
            lo.append(f["median"] - low)
            hi.append(high - f["median"])
        if name == LIMIT:
            ax.plot(xs, ys, "k--", linewidth=1.5, label=SHORT[LIMIT])
        else:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", markersize=4, capsize=3,
                        color=COLORS.get(name), label=SHORT.get(name, name))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{scenario['x']['name']} (log)")
    ax.set_ylabel(f"{unit}/s (log), median and min-max")
    _si_axis(ax.yaxis)
    ax.xaxis.set_major_formatter(FuncFormatter(_si))
    _finish(fig, ax, scenario["title"], path)


def category_plot(scenario: dict, path: Path) -> None:
    """Grouped bars per category on a log axis; the limit as a dashed line per group."""
    points = [p for p in scenario["points"] if p["figures"]]
    names = [n for n in _impls(points) if n != LIMIT]
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    width = 0.8 / max(len(names), 1)
    for i, point in enumerate(points):
        for j, name in enumerate(names):
            f = point["figures"].get(name)
            if f is None:
                continue
            low, high = _rate_range(f)
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, f["median"], width, color=COLORS.get(name),
                   label=SHORT.get(name, name) if i == 0 or name not in points[0]["figures"] else None)
            ax.errorbar(x, f["median"], yerr=[[f["median"] - low], [high - f["median"]]], color="black",
                        capsize=2, linewidth=0.8)
        limit = point["figures"].get(LIMIT)
        if limit is not None:
            ax.hlines(limit["median"], i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      label=SHORT[LIMIT] if i == 0 else None)
    ax.set_xticks(range(len(points)), [p["label"] for p in points])
    ax.set_yscale("log")
    ax.set_ylabel(f"{scenario['item_unit']}/s (log), median and min-max")
    _si_axis(ax.yaxis)
    _finish(fig, ax, scenario["title"], path)


def memory_plot(scenario: dict, path: Path) -> None:
    """Peak bytes per reading against readings (log-log)."""
    points = [p for p in scenario["points"] if p["figures"]]
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    for name in _impls(points):
        xs, ys = [], []
        for point in points:
            f = point["figures"].get(name)
            if f is not None and f.get("bytes_per_item") and not f.get("sampled"):
                xs.append(point["x"])
                ys.append(f["bytes_per_item"])
        if xs and name != LIMIT:
            ax.plot(xs, ys, marker="o", markersize=4, color=COLORS.get(name), label=SHORT.get(name, name))
    ax.axhline(20, color="black", linestyle=":", linewidth=1, label="the input itself (20 B/reading)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("readings (log)")
    ax.set_ylabel("peak new memory per reading, bytes (log)")
    ax.xaxis.set_major_formatter(FuncFormatter(_si))
    _finish(fig, ax, "Peak memory per reading (beyond the inputs)", path)


def service_plot(scenario: dict, path: Path) -> None:
    """Throughput of each service figure (bars, log) and, where given, latency percentiles."""
    (point,) = scenario["points"]
    figures = point["figures"]
    with_latency = {n: f for n, f in figures.items() if f.get("latency_us", {}).get("count")}
    size = (13 if with_latency else 8, max(1.6 + 0.45 * len(figures), 4.2))
    fig, axes = plt.subplots(1, 2 if with_latency else 1, figsize=size,
                             gridspec_kw={"width_ratios": [1.4, 1]} if with_latency else None)
    ax = axes[0] if with_latency else axes
    names = list(figures)[::-1]
    colors = ["#1f77b4" if figures[n]["kind"] == "end_to_end" else "#7f7f7f" for n in names]
    ax.barh(range(len(names)), [figures[n]["median"] for n in names], color=colors)
    ax.set_yticks(range(len(names)), [textwrap.fill(f"{figures[n]['label']} [{figures[n]['unit']}]", 42)
                                      for n in names], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("per second (log), median; grey: raw ceilings")
    _si_axis(ax.xaxis)
    ax.grid(True, which="both", axis="x", alpha=0.25)
    ax.set_title("Throughput", fontsize=11)
    if with_latency:
        lat = axes[1]
        keys = ["p50", "p90", "p99", "p99_9", "max"]
        for f in with_latency.values():
            lat.plot(keys, [f["latency_us"][k] / 1000 for k in keys], marker="o",
                     label=textwrap.fill(f["label"], 50))
        lat.set_yscale("log")
        lat.set_ylabel("latency per call, ms (log)")
        _si_axis(lat.yaxis)
        lat.grid(True, which="both", alpha=0.25)
        lat.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        lat.set_title("Latency percentiles (HDR histogram)", fontsize=11)
    fig.suptitle(scenario["title"], fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def render_plots(results: dict, out: Path) -> dict[str, str]:
    """Write one PNG per scenario (and memory.png); returns {name: file name}."""
    written = {}
    for name, scenario in results["scenarios"].items():
        if not any(p["figures"] for p in scenario.get("points", [])):
            continue
        path = out / f"{name}.png"
        if name in ("service", "webhook"):
            service_plot(scenario, path)
        elif scenario["x"]["scale"] == "category":
            category_plot(scenario, path)
        else:
            curve_plot(scenario, path)
        written[name] = path.name
    readings = results["scenarios"].get("readings")
    if readings and any(f.get("bytes_per_item") for p in readings["points"] for f in p["figures"].values()):
        memory_plot(readings, out / "memory.png")
        written["memory"] = "memory.png"
    return written
