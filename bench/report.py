"""The Markdown report of a suite run, and the README's generated
performance section.

`write_report` writes report.md beside results.json and the plots.
`update_readme` copies a full run's plots, report and results.json to
docs/bench/ (committed, so the README renders on a fresh clone) and rewrites
the README between the markers below; nothing else in the README changes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
LIMIT = "bandwidth"
KERNEL = "kernel"
ORDER = ("rate_cli", "pyarrow_decode", "kernel", "kernel_grouped", "kernel_consumption_only",
         "rater_from_arrow", "api_split", "numpy", "pyarrow", "reference", "bandwidth")


class ReadmeError(Exception):
    pass


# ------------------------------------------------------------------ formatting

def rate(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {suffix}"
    return f"{value:.3g}"


def ratio(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 0.01:
        return f"{value:.3g}×"
    return f"1/{1 / value:,.0f}"


def milliseconds(microseconds: float) -> str:
    value = microseconds / 1000
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def mib(value: float | None) -> str:
    return "" if value is None else f"{value / 2**20:,.1f}"


def _sorted(names) -> list[str]:
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def machine_line(results: dict) -> str:
    m = results["machine"]
    v = m["versions"]
    memory = f", {m['memory_bytes'] / 2**30:.0f} GiB" if m.get("memory_bytes") else ""
    flags = f" ({', '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    return (f"{m['cpu']}{flags}, {m['cores']} cores{memory}; {m['os']}; {m['python']}, "
            f"numpy {v.get('numpy')}, pyarrow {v.get('pyarrow')}, Cython {v.get('cython')}")


def shared_line(results: dict) -> str:
    """How busy the machine was: others' work slows every implementation alike,
    so the same-run ratios hold better than the absolute figures."""
    loads = [s["load_average_after"][0] for s in results["scenarios"].values() if s.get("load_average_after")]
    if not loads:
        return ""
    return (f"The machine was shared with other work (1-minute load average up to {max(loads):.1f} "
            f"on {results['machine']['cores']} cores after a scenario): read the ratios first. ")


def commit_line(results: dict) -> str:
    m = results["machine"]
    commit = (m.get("git_commit") or "unknown")[:10]
    dirty = m.get("git_dirty_files") or []
    if not m.get("git_dirty"):
        return commit
    return f"{commit} (with uncommitted changes to {', '.join(dirty[:4])}{' ...' if len(dirty) > 4 else ''})"


# ------------------------------------------------------------------ key figures

def key_point(results: dict) -> tuple[str, dict] | None:
    """The headline point: time order at the main size (else the largest readings point)."""
    scenarios = results["scenarios"]
    for scenario, label in (("order", "time order"), ("tariffs", "4 slabs")):
        for point in scenarios.get(scenario, {}).get("points", []):
            if point["label"] == label and point["figures"]:
                return scenario, point
    points = [p for p in scenarios.get("readings", {}).get("points", []) if p["figures"]]
    return ("readings", points[-1]) if points else None


def figures_table(point: dict, unit: str) -> list[str]:
    rows = []
    for name in _sorted(point["figures"]):
        f = point["figures"][name]
        sample = f" (sample of {f['items']:,})" if f.get("sampled") else ""
        rows.append([
            f["label"] + sample,
            rate(f["median"]),
            f"{f['median_s']:.3g}",
            f"{f['spread']['iqr_pct']:.0f} %",
            str(len(f["runs_s"])),
            ratio(f.get("ratio_to_kernel")),
            mib(f.get("peak_bytes")),
            f"{f['bytes_per_item']:.1f}" if f.get("bytes_per_item") is not None else "",
        ])
    per = unit.removesuffix("s/s").removesuffix("/s") or "item"
    return _table(["implementation", unit, "median s", "IQR", "runs", "× kernel", "peak MiB", f"B/{per}"],
                  rows)


def curve_table(scenario: dict) -> list[str]:
    """One row per point: each implementation's throughput and ratio to the kernel."""
    points = scenario["points"]
    names = _sorted({n for p in points for n in p["figures"]})
    rows = []
    for point in points:
        row = [point["label"]]
        for name in names:
            f = point["figures"].get(name)
            if f is None:
                reason = point.get("skipped", {}).get(name) or point.get("skipped", {}).get("all")
                row.append("skipped" if reason else "")
            elif name == KERNEL or f.get("ratio_to_kernel") is None:
                row.append(rate(f["median"]))
            else:
                row.append(f"{rate(f['median'])} ({ratio(f['ratio_to_kernel'])})")
        rows.append(row)
    return _table([scenario["x"]["name"], *names], rows)


def files_table(scenario: dict) -> list[str]:
    """One row per file: rate() and decoding alone, and their ratio (the figure)."""
    rows = []
    for point in scenario["points"]:
        mine, decode = point["figures"].get("rate_cli"), point["figures"].get("pyarrow_decode")
        if mine is None or decode is None:
            continue
        rows.append([point["label"], f"{rate(mine['median'])}", f"{mine['median_s']:.3g}",
                     f"{rate(decode['median'])}", f"{decode['median_s']:.3g}",
                     f"{mine['ratio_to_decode']:.2f}", mib(mine.get("peak_bytes"))])
    return _table(["file", "rate() readings/s", "rate() s", "decode only readings/s", "decode s",
                   "rate / decode", "rate() peak MiB"], rows)


def memory_table(scenario: dict) -> list[str]:
    points = [p for p in scenario["points"] if p["figures"]]
    names = _sorted({n for p in points for n, f in p["figures"].items()
                     if f.get("peak_bytes") is not None and n != LIMIT})
    rows = []
    for point in points:
        row = [point["label"]]
        for name in names:
            f = point["figures"].get(name)
            row.append("" if f is None or f.get("peak_bytes") is None
                       else f"{mib(f['peak_bytes'])} MiB, {f['bytes_per_item']:.1f} B")
        rows.append(row)
    return _table([scenario["x"]["name"], *names], rows)


def skipped_notes(scenario: dict) -> list[str]:
    notes = []
    for point in scenario["points"]:
        for name, reason in point.get("skipped", {}).items():
            notes.append(f"- {point['label']}: {name} skipped: {reason}")
    return notes


# ------------------------------------------------------------------ report.md

def write_report(results: dict, out: Path) -> Path:
    lines = [
        "# rating benchmark report",
        "",
        f"- Command: `{results['command']}` ({results['mode']} run, {results['duration_s']:.0f} s)",
        f"- Date: {results['created_utc']} (UTC); commit {commit_line(results)}",
        f"- Machine: {machine_line(results)}",
        f"- Load average at the end: {results['machine'].get('load_average')}",
        f"- Method: {results['method']['timing']}. Peak memory: {results['method']['peak_memory']}. "
        f"Scope: {results['method'].get('scope', '')}.",
        "",
    ]
    failed = [c for c in results["checks"] if not c["ok"]]
    lines.append(f"**Checks**: {len(results['checks']) - len(failed)} of {len(results['checks'])} agree "
                 "(kernel, numpy, pyarrow, Rater and the reference give the same totals to the minor unit)."
                 + (" **FAILED**: " + "; ".join(f"{c['scenario']} {c['point']} {c['impl']}" for c in failed)
                    if failed else ""))
    lines.append("")
    key = key_point(results)
    if key:
        scenario, point = key
        title = results["scenarios"][scenario]["title"].lower()
        unit = results["scenarios"][scenario]["item_unit"] + "/s"
        lines += [f"## Key figures: {title}, {point['label']}", "", _params(point), "",
                  *figures_table(point, unit), ""]
    plots = results.get("plots", {})
    for name, scenario in results["scenarios"].items():
        lines += [f"## {scenario['title']}", "", scenario["description"], ""]
        if scenario.get("skipped"):
            lines += [f"Skipped: {scenario['skipped']}", ""]
            continue
        if name in plots:
            lines += [f"![{scenario['title']}]({plots[name]})", ""]
        if name in ("service", "webhook"):  # figures beside ceilings, with latencies
            lines += service_lines(scenario)
            continue
        if name == "files":
            lines += [*files_table(scenario), ""]
        lines += [f"{scenario['item_unit']}/s, median (ratio to the kernel):", "", *curve_table(scenario), ""]
        if any(f.get("peak_bytes") is not None for p in scenario["points"] for f in p["figures"].values()):
            lines += ["Peak new memory (and bytes per item):", "", *memory_table(scenario), ""]
        if name == "readings" and "memory" in plots:
            lines += [f"![Peak memory per reading]({plots['memory']})", ""]
        notes = skipped_notes(scenario)
        if notes:
            lines += [*notes, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def _params(point: dict) -> str:
    params = point.get("params", {})
    return ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
                     for k, v in params.items())


def service_lines(scenario: dict) -> list[str]:
    (point,) = scenario["points"]
    rows = []
    for f in point["figures"].values():
        lat = f.get("latency_us", {})
        ceilings = ", ".join(f"{ratio(r)} of {n}" for n, r in f.get("ratio_to_ceiling", {}).items())
        percentiles = [milliseconds(lat[k]) if lat.get(k) is not None else ""
                       for k in ("p50", "p99", "p99_9")]
        rows.append([f["label"], f["kind"], f"{rate(f['median'])} {f['unit']}",
                     f"{f['spread']['iqr_pct']:.0f} %", *percentiles, ceilings])
    servers = ", ".join(f"{k} {v}" for k, v in scenario.get("servers", {}).items())
    return [f"Servers: {servers or 'embedded only'}", "",
            *_table(["figure", "kind", "median", "IQR", "p50 ms", "p99 ms", "p99.9 ms", "vs ceilings"], rows),
            ""]


# ------------------------------------------------------------------ README

def readme_block(results: dict, image_dir: str) -> str:
    """The README's performance section, generated from a full run."""
    scenarios = results["scenarios"]
    plots = results.get("plots", {})
    lines = [
        BEGIN,
        "<!-- Generated by `rating bench --update-readme` from a full run; edits here are overwritten. -->",
        "",
        f"Measured with `{results['command']}` on {results['created_utc'][:10]} "
        f"({results['duration_s'] / 60:.0f} minutes), commit {commit_line(results)}, on: "
        f"{machine_line(results)}. Medians of {results['plan']['repeats']} runs (3 for runs over "
        f"{results['plan']['slow_run_s']:g} s), every implementation on the same data in the same run, "
        "checked to agree to the paisa before it is timed. "
        f"{results['method'].get('scope', '').capitalize()}. "
        f"{shared_line(results)}"
        f"Full report: [docs/bench/report.md]({image_dir}/report.md); "
        f"every figure with its runs: [results.json]({image_dir}/results.json).",
        "",
    ]
    files = scenarios.get("files")
    if files and any(p["figures"] for p in files["points"]):
        lines += [f"**{files['title']}.** {files['description']}", "", *files_table(files), ""]
        if "files" in plots:
            lines += [f"![{files['title']}]({image_dir}/{plots['files']})", ""]
    key = key_point(results)
    if key:
        scenario, point = key
        lines += [f"**The kernel: {_params(point)}:**", "",
                  *figures_table(point, scenarios[scenario]["item_unit"] + "/s"), ""]
    for name in ("readings", "meters", "many_meters", "tariffs", "order", "apportion"):
        scenario = scenarios.get(name)
        if not scenario or not any(p["figures"] for p in scenario["points"]):
            continue
        lines += [f"**{scenario['title']}.** {scenario['description']}", "",
                  *curve_table(scenario), ""]
        if name in plots:
            lines += [f"![{scenario['title']}]({image_dir}/{plots[name]})", ""]
        if name == "readings" and "memory" in plots:
            lines += [f"![Peak memory per reading]({image_dir}/{plots['memory']})", ""]
    for name in ("service", "webhook"):  # end to end beside the ceilings
        service = scenarios.get(name)
        if not service:
            continue
        lines += [f"**{service['title']}.** {service.get('description', '')}".rstrip(), ""]
        if service.get("skipped"):
            lines += [f"Not measured in this run: {service['skipped']}.", ""]
        else:
            lines += service_lines(service)
            if name in plots:
                lines += [f"![{service['title']}]({image_dir}/{plots[name]})", ""]
    lines += ["Run it yourself: `make bench` (or `./dev bench`; `rating bench --quick` takes seconds). "
              "Regenerate this section from a full run with `rating bench --update-readme`.", "", END]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ReadmeError(f"README must hold exactly one {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def update_readme(results_dir: Path, readme: Path, docs_dir: Path, *, allow_quick: bool = False) -> Path:
    """Copy a run's plots, report and results to `docs_dir`; rewrite the README block."""
    results = json.loads((results_dir / "results.json").read_text())
    if results.get("mode") != "full" and not allow_quick:
        raise ReadmeError(f"{results_dir} is a {results.get('mode')} run: the README quotes full runs only")
    if not results.get("ok", False):
        raise ReadmeError(f"{results_dir}: the implementations disagreed in that run; not publishing it")
    text = readme.read_text()
    image_dir = docs_dir.resolve().relative_to(readme.resolve().parent).as_posix()
    new_text = replace_block(text, readme_block(results, image_dir))
    docs_dir.mkdir(parents=True, exist_ok=True)
    for old in docs_dir.glob("*.png"):
        old.unlink()
    for name in [*results.get("plots", {}).values(), "report.md", "results.json"]:
        shutil.copyfile(results_dir / name, docs_dir / name)
    readme.write_text(new_text)
    return readme
