"""Sweep outputs: results.csv, results.json, summary.md and the plots.

Accuracy columns and the error-vs-LUTs plot appear for units with an accuracy report (softmax)."""

import csv
import io
import json
from pathlib import Path

from int8attn.golden.files import write_atomic

ACCURACY_SET = "peaked"
RESOURCE_COLUMNS = ("luts", "ffs", "carry", "dsp", "bram")


def flatten(record: dict, families: list[str]) -> dict:
    """One CSV row: the point, its parameters, accuracy and per-family figures."""
    row = {"point": record["point"], "error": record.get("error", "")}
    row.update({f"param_{key}": value for key, value in record["parameters"].items()})
    for kind in [kind for kind in ("uniform", "normal", "peaked") if f"accuracy_{kind}" in record]:
        metrics = record[f"accuracy_{kind}"]
        row[f"{kind}_max_err_lsb"] = metrics.get("max_abs_error_lsb")
        row[f"{kind}_mean_err_lsb"] = metrics.get("mean_abs_error_lsb")
        row[f"{kind}_kl"] = metrics.get("kl_divergence")
        row[f"{kind}_rank_correlation"] = metrics.get("rank_correlation")
        row[f"{kind}_identical_to_tflite"] = metrics.get("bit_identical_to_tflite")
    if "rtl_check" in record:
        row["rtl_check_passed"] = record["rtl_check"]["passed"]
    for family in families:
        report = record.get(family, {})
        for column in RESOURCE_COLUMNS:
            row[f"{family}_{column}"] = report.get("resources", {}).get(column)
        row[f"{family}_fits"] = report.get("fits")
        row[f"{family}_fmax_mhz"] = report.get("fmax_mhz")
        row[f"{family}_elements_per_s"] = report.get("elements_per_s")
        row["latency_cycles"] = report.get("latency_cycles", row.get("latency_cycles"))
    return row


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (lower is better on both)."""
    return [i for i, (x, y) in enumerate(points)
            if not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y) for x2, y2 in points)]


def _plots(rows: list[dict], family: str | None, out_dir: Path) -> dict[str, Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    good = [r for r in rows if not r["error"] and family and r.get(f"{family}_luts") is not None]
    if not good:
        return paths
    if _has_accuracy(good):
        paths.update(_error_plot(good, family, out_dir))
    for name, x_key, y_key, y_label in (("fmax_vs_n", "param_n", f"{family}_fmax_mhz", f"Fmax (MHz, {family})"),
                                        ("luts_vs_lanes", "param_lanes", f"{family}_luts", f"LUTs ({family})")):
        series = [(r[x_key], r[y_key]) for r in good if r.get(x_key) is not None and r.get(y_key) is not None]
        if not series:
            continue
        figure, axis = plt.subplots(figsize=(6, 4), constrained_layout=True)
        axis.scatter(*zip(*series, strict=True))
        axis.set_xlabel(x_key.removeprefix("param_"))
        axis.set_ylabel(y_label)
        axis.grid(True, alpha=0.3)
        paths[name] = out_dir / f"{name}.png"
        write_atomic(paths[name], lambda file, figure=figure: figure.savefig(file, format="png", dpi=110))
        plt.close(figure)
    return paths


def _has_accuracy(rows: list[dict]) -> bool:
    return any(r.get(f"{ACCURACY_SET}_max_err_lsb") is not None for r in rows)


def _error_plot(good: list[dict], family: str, out_dir: Path) -> dict[str, Path]:
    """Pareto plots of accuracy on the :data:`ACCURACY_SET` rows: max error against LUTs, and KL divergence (which
    compares modes whose LSBs differ) against LUTs and against elements/s."""
    luts = [r[f"{family}_luts"] for r in good]
    errors = [r[f"{ACCURACY_SET}_max_err_lsb"] for r in good]
    kl = [r[f"{ACCURACY_SET}_kl"] for r in good]
    paths = {"error_vs_luts": _pareto_plot(good, luts, errors, f"LUTs ({family})",
                                           f"max |error| (output LSB, {ACCURACY_SET} rows)",
                                           out_dir / "error_vs_luts.png")}
    paths["kl_vs_luts"] = _pareto_plot(good, luts, kl, f"LUTs ({family})", f"KL divergence ({ACCURACY_SET} rows)",
                                       out_dir / "kl_vs_luts.png")
    rate = [(r, r.get(f"{family}_elements_per_s"), k) for r, k in zip(good, kl, strict=True)]
    rate = [entry for entry in rate if entry[1] is not None]
    if rate:
        rows, throughput, divergence = (list(column) for column in zip(*rate, strict=True))
        paths["kl_vs_elements_per_s"] = _pareto_plot(
            rows, [-value for value in throughput], divergence, f"elements/s at Fmax ({family})",
            f"KL divergence ({ACCURACY_SET} rows)", out_dir / "kl_vs_elements_per_s.png", negated_x=True)
    return paths


def _pareto_plot(good: list[dict], x: list[float], y: list[float], x_label: str, y_label: str, path: Path,
                 negated_x: bool = False) -> Path:
    """Points ``(x, y)`` (lower is better on both; ``negated_x``: ``x`` holds the negated values of a quantity where
    higher is better, plotted as they are), the Pareto front dashed and labelled."""
    import matplotlib.pyplot as plt

    front = set(pareto_front(list(zip(x, y, strict=True))))
    shown = [-value for value in x] if negated_x else x
    figure, axis = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    axis.scatter(shown, y, c=["tab:red" if i in front else "tab:blue" for i in range(len(good))])
    ordered = sorted(front, key=lambda i: shown[i])
    axis.plot([shown[i] for i in ordered], [y[i] for i in ordered], "r--", label="Pareto front")
    for i in ordered:
        axis.annotate(good[i]["point"], (shown[i], y[i]), fontsize=6)
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.set_yscale("symlog", linthresh=1e-3 if "KL" in y_label else 1)
    axis.legend()
    write_atomic(path, lambda file: figure.savefig(file, format="png", dpi=110))
    plt.close(figure)
    return path


def markdown(sweep: dict, rows: list[dict], family: str | None) -> str:
    lines = [f"# Sweep `{sweep['name']}`: {len(rows)} points, families {', '.join(sweep['run']['families']) or '–'}",
             ""]
    accuracy = _has_accuracy(rows)
    header = ["point", *(("max err (LSB)", "mean err (LSB)", "KL", "rank ρ", "= tflite") if accuracy else ()),
              "latency (cycles)"]
    if family:
        header += [f"{family} LUT", "FF", "DSP", "BRAM", "Fmax (MHz)", "elements/s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['point']} | failed: {r['error']} |" + " |" * (len(header) - 2))
            continue
        cells = [r["point"]]
        if accuracy:
            identical = r[f"{ACCURACY_SET}_identical_to_tflite"]
            rank = r.get(f"{ACCURACY_SET}_rank_correlation")
            cells += [f"{r[f'{ACCURACY_SET}_max_err_lsb']:.2f}", f"{r[f'{ACCURACY_SET}_mean_err_lsb']:.3f}",
                      f"{r[f'{ACCURACY_SET}_kl']:.2e}", "–" if rank is None else f"{rank:.3f}",
                      "–" if identical is None else f"{100 * identical:.1f}%"]
        cells.append(str(r.get("latency_cycles", "–")))
        if family:
            cells += [str(r.get(f"{family}_{c}")) for c in ("luts", "ffs", "dsp", "bram", "fmax_mhz")]
            rate = r.get(f"{family}_elements_per_s")
            cells.append("–" if rate is None else f"{rate / 1e6:.0f} M")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if accuracy:
        lines.append(f"Accuracy on {sweep['run']['rows']} `{ACCURACY_SET}` rows against float64 softmax; "
                     "see results.csv for every metric and row set.")
    return "\n".join(lines) + "\n"


def write_outputs(sweep: dict, records: list[dict], out_dir: Path) -> dict[str, Path]:
    families = sweep["run"]["families"]
    rows = [flatten(record, families) for record in records]
    family = families[0] if families else None
    paths = {"csv": out_dir / "results.csv", "json": out_dir / "results.json", "markdown": out_dir / "summary.md"}
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(paths["csv"], table.getvalue())
    write_atomic(paths["json"], json.dumps({"name": sweep["name"], "run": sweep["run"], "points": records},
                                           indent=2) + "\n")
    write_atomic(paths["markdown"], markdown(sweep, rows, family))
    paths.update(_plots(rows, family, out_dir))
    return paths
