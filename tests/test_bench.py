"""`rating bench`: the quick suite end to end (results.json schema, report,
plots), the service hook, the README block. No assertion on speed."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from bench import bench_files, report, suite, suite_service
from bench.tariff_workloads import PEERLESS
from rating.cli.commands import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_KEYS = {"unit", "median", "items", "sampled", "median_s", "runs_s", "spread", "label"}
SPREAD_KEYS = {"min_s", "max_s", "q1_s", "q3_s", "iqr_pct"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "quick"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_run_writes_results_report_and_plots(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    assert results["schema"] == suite.SCHEMA
    assert results["mode"] == "quick"
    assert results["ok"] is True
    assert results["checks"] and all(check["ok"] for check in results["checks"])
    machine = results["machine"]
    for key in ("cpu", "cores", "os", "python", "versions", "git_commit"):
        assert key in machine
    assert machine["versions"]["numpy"] == np.__version__
    assert set(results["scenarios"]) == set(suite.SCENARIOS)
    report_text = (quick_run / "report.md").read_text()
    for name, plot in results["plots"].items():
        assert (quick_run / plot).read_bytes().startswith(PNG_MAGIC), name
        assert f"]({plot})" in report_text
    assert {"readings", "meters", "tariffs", "order", "apportion", "memory"} <= set(results["plots"])


def test_every_figure_has_unit_runs_median_spread_and_ratio(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    for name, scenario in results["scenarios"].items():
        if name in ("service", "files", "webhook"):
            continue
        assert {"title", "description", "x", "item_unit", "points"} <= set(scenario)
        assert scenario["points"], name
        for point in scenario["points"]:
            figures = point["figures"]
            assert {"kernel", "bandwidth"} <= set(figures), (name, point["label"])
            assert figures["kernel"]["ratio_to_kernel"] == pytest.approx(1.0)
            for impl, f in figures.items():
                assert FIGURE_KEYS <= set(f), (name, impl)
                assert SPREAD_KEYS <= set(f["spread"])
                assert f["unit"] == scenario["item_unit"] + "/s"
                assert f["runs_s"] and all(s > 0 for s in f["runs_s"])
                assert f["median"] == pytest.approx(f["items"] / f["median_s"])
                assert f["spread"]["min_s"] <= f["median_s"] <= f["spread"]["max_s"]
                assert f["ratio_to_kernel"] > 0
                assert f["peak_bytes"] >= 0 and f["bytes_per_item"] >= 0


def test_webhook_payments_stand_beside_the_insert_ceiling_of_each_ledger(quick_run):
    (point,) = json.loads((quick_run / "results.json").read_text())["scenarios"]["webhook"]["points"]
    figures = point["figures"]
    for ledger in ("sqlite", "postgres"):
        closed = figures[f"webhook_{ledger}"]
        assert closed["kind"] == "end_to_end" and closed["unit"] == "payments/s"
        assert closed["latency_us"]["count"] == closed["items"] * len(closed["runs_s"])
        assert closed["ratio_to_ceiling"][f"insert_ceiling_{ledger}"] > 0
        assert figures[f"webhook_{ledger}_offered"]["latency_us"]["count"] > 0
        assert figures[f"direct_{ledger}"]["kind"] == figures[f"insert_ceiling_{ledger}"]["kind"] == "ceiling"


def test_peers_side_by_side_in_every_rating_scenario(quick_run):
    scenarios = json.loads((quick_run / "results.json").read_text())["scenarios"]
    for name in ("readings", "tariffs", "order"):
        for point in scenarios[name]["points"]:
            # the peers rate graduated slabs only: a rate matrix runs beside the kernel's ceiling
            peers = {"numpy", "pyarrow"} if point["params"]["tariff"] not in PEERLESS else set()
            assert {"kernel", "reference", "bandwidth", *peers} <= set(point["figures"])
            assert point["figures"]["reference"]["sampled"] is True
            assert peers or set(point["skipped"]) == {"numpy", "pyarrow"}
    labels = [p["label"] for p in scenarios["tariffs"]["points"]]
    assert labels == ["flat", "4 slabs", "12 slabs", "TOU 3 x 4 slabs", "TOU 3 x 4 rate matrix"]
    assert [p["label"] for p in scenarios["order"]["points"]] == ["time order", "grouped by meter"]


def test_files_scenario_rates_every_format_beside_decoding_it(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    points = results["scenarios"]["files"]["points"]
    assert [p["params"]["format"] for p in points] == list(bench_files.FORMATS)
    for point in points:
        assert set(point["figures"]) == {"rate_cli", "pyarrow_decode"}
        mine = point["figures"]["rate_cli"]
        assert mine["ratio_to_decode"] == pytest.approx(
            mine["median"] / point["figures"]["pyarrow_decode"]["median"])
        assert point["params"]["file_bytes"] > 0
    files_checks = [c for c in results["checks"] if c["scenario"] == "files"]
    assert len(files_checks) == len(points) and all(c["ok"] for c in files_checks)
    assert "rate / decode" in (quick_run / "report.md").read_text()


def test_a_disagreement_fails_the_run(tmp_path, monkeypatch):
    def wrong(totals, offsets, weights, keys):
        return np.zeros(len(weights), dtype=np.int64)

    monkeypatch.setattr(suite, "split_numpy", wrong)
    out = tmp_path / "broken"
    assert main(["bench", "--quick", "--only", "apportion", "--out", str(out)]) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["ok"] is False
    assert any(not c["ok"] and c["impl"] == "numpy" for c in results["checks"])


@pytest.mark.parametrize("argv", [
    ["bench", "--only", "nonsense"],
    ["bench", "--from", "somewhere"],
    ["bench", "--quick", "--update-readme"],
    ["bench", "--repeats", "0"],
])
def test_bad_arguments_exit_2(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert "rating: error:" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ service hook

def _fake_service(**figures) -> types.ModuleType:
    module = types.ModuleType(suite_service.SERVICE_MODULE)

    def suite_figures(*, quick: bool, work_dir: Path) -> dict:
        assert quick is True and work_dir.is_dir()
        return {"servers": {"redis": "7.0"}, "figures": figures}

    module.suite_figures = suite_figures
    return module


def test_service_hook_missing_is_recorded_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, suite_service.SERVICE_MODULE, types.ModuleType("empty"))
    scenario = suite_service.service_scenario(quick=True, log=lambda _: None, copy_ceiling=False)
    assert "has no suite_figures" in scenario["skipped"]
    assert scenario["points"] == []


def test_service_hook_figures_percentiles_and_ceiling_ratios(tmp_path, monkeypatch):
    latencies = np.random.default_rng(3).integers(100, 5_000, 10_000).tolist()
    module = _fake_service(
        stream_embedded={"kind": "end_to_end", "unit": "deductions/s", "items": 100_000,
                         "runs_s": [2.0, 2.2, 1.9], "latencies_us": latencies, "label": "embedded"},
        redis_script_ceiling={"kind": "ceiling", "unit": "deductions/s", "items": 100_000,
                              "runs_s": [0.5, 0.5, 0.6]},
    )
    monkeypatch.setitem(sys.modules, suite_service.SERVICE_MODULE, module)
    scenario = suite_service.service_scenario(quick=True, log=lambda _: None, copy_ceiling=False)
    (point,) = scenario["points"]
    stream = point["figures"]["stream_embedded"]
    assert stream["median"] == pytest.approx(100_000 / 2.0)
    assert stream["ratio_to_ceiling"]["redis_script_ceiling"] == pytest.approx(0.25)
    lat = stream["latency_us"]
    assert lat["count"] == 10_000
    assert lat["p50"] == pytest.approx(np.percentile(latencies, 50), rel=0.01)
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    results = {"scenarios": {"service": scenario}}
    from bench.plots import render_plots

    assert render_plots(results, tmp_path) == {"service": "service.png"}
    assert (tmp_path / "service.png").read_bytes().startswith(PNG_MAGIC)
    assert any("embedded" in line for line in report.service_lines(scenario))


def test_service_hook_rejects_malformed_figures():
    with pytest.raises(ValueError, match="runs_s"):
        suite_service.normalise({"figures": {"x": {"kind": "ceiling", "unit": "rows/s", "items": 1,
                                                   "runs_s": []}}})
    with pytest.raises(ValueError, match="kind"):
        suite_service.normalise({"figures": {"x": {"kind": "fast", "unit": "rows/s", "items": 1,
                                                   "runs_s": [1.0]}}})


# ------------------------------------------------------------------ README block

README = f"# project\n\n## Performance\n\n{report.BEGIN}\nold figures\n{report.END}\n\nhand-written text\n"


def test_many_meters_puts_the_kernels_choice_beside_numpy_and_the_other_choice(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    (point,) = results["scenarios"]["many_meters"]["points"]
    other = "kernel_direct" if point["params"]["kernel_reorders"] else "kernel_reordered"
    assert set(point["figures"]) == {"kernel", other, "numpy", "bandwidth"}
    assert point["params"]["reads_per_meter"] == suite.MANY_READS
    checks = [c for c in results["checks"] if c["scenario"] == "many_meters"]
    assert {c["impl"] for c in checks} == {other, "numpy"} and all(c["ok"] for c in checks)


def test_readme_block_says_the_machine_was_shared(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    block = report.readme_block(results, "docs/bench")
    assert "The machine was shared with other work (1-minute load average up to" in block
    assert "**Many meters: the kernel beside careful numpy.**" in block


def test_update_readme_replaces_only_the_block_and_copies_plots(quick_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    docs = tmp_path / "docs" / "bench"
    with pytest.raises(report.ReadmeError, match="full runs only"):
        report.update_readme(quick_run, readme, docs)
    report.update_readme(quick_run, readme, docs, allow_quick=True)
    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith("# project\n\n## Performance\n\n") and text.endswith("hand-written text\n")
    assert "`rating bench --quick --out" in text
    results = json.loads((quick_run / "results.json").read_text())
    for plot in results["plots"].values():
        assert f"](docs/bench/{plot})" in text
        assert (docs / plot).read_bytes().startswith(PNG_MAGIC)
    assert (docs / "report.md").exists() and (docs / "results.json").exists()
    # idempotent: the same run gives the same README
    report.update_readme(quick_run, readme, docs, allow_quick=True)
    assert readme.read_text() == text


def test_update_readme_needs_exactly_one_block(quick_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(report.ReadmeError, match="exactly one"):
        report.update_readme(quick_run, readme, tmp_path / "docs", allow_quick=True)
    assert readme.read_text() == "# no markers\n"


def test_the_repository_readme_has_the_block():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1


def test_quick_run_measures_the_postgres_copy_ceiling(quick_run):
    from tests.servers import postgres_bin

    service = json.loads((quick_run / "results.json").read_text())["scenarios"]["service"]
    if postgres_bin() is None:
        assert "postgres_copy_ceiling" in service.get("skipped", "") or \
            "postgres_copy_ceiling" in service["points"][0]["skipped"]
        return
    (point,) = service["points"]
    copy = point["figures"]["postgres_copy_ceiling"]
    assert copy["kind"] == "ceiling" and copy["unit"] == "rows/s" and copy["median"] > 0
    assert copy["latency_us"]["count"] == copy["items"] // suite_service.COPY_BATCH_ROWS * len(copy["runs_s"])
    assert service["servers"]["postgresql"]
