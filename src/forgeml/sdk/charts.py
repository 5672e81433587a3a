"""Tuning charts: objective over time with the best-so-far line, and each hyperparameter against the
objective. ``.html`` files are self-contained SVG pages (no plotting library needed); ``.png`` files
are drawn with matplotlib when it is installed.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

WIDTH, HEIGHT, PAD = 640, 360, 48

# (x label, y label, x values, y values, best-so-far line or None, category names or None)
Panel = tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None, list[str] | None]


def _scale(values: np.ndarray, low: float, high: float, out_low: float, out_high: float) -> np.ndarray:
    span = (high - low) or 1.0
    return out_low + (values - low) / span * (out_high - out_low)


def _svg_panel(x: np.ndarray, y: np.ndarray, best: np.ndarray | None, x_label: str, y_label: str,
               categories: list[str] | None = None) -> str:
    x_low, x_high = float(np.min(x)), float(np.max(x))
    y_low, y_high = float(np.min(y)), float(np.max(y))
    px = _scale(x, x_low, x_high, PAD, WIDTH - PAD / 2)
    py = _scale(y, y_low, y_high, HEIGHT - PAD, PAD / 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<rect x="{PAD}" y="{PAD / 2}" width="{WIDTH - 1.5 * PAD}" height="{HEIGHT - 1.5 * PAD}" fill="none" stroke="#999"/>']
    for cx, cy in zip(px, py, strict=True):
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="#1f77b4" fill-opacity="0.8"/>')
    if best is not None:
        by = _scale(best, y_low, y_high, HEIGHT - PAD, PAD / 2)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, by, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#d62728" stroke-width="2"/>')
    for value, label in ((y_low, f"{y_low:.4g}"), (y_high, f"{y_high:.4g}")):
        y_pos = float(_scale(np.array([value]), y_low, y_high, HEIGHT - PAD, PAD / 2)[0])
        parts.append(f'<text x="{PAD - 4}" y="{y_pos + 4:.1f}" text-anchor="end">{label}</text>')
    if categories:
        for index, name in enumerate(categories):
            x_pos = float(_scale(np.array([index]), x_low, x_high, PAD, WIDTH - PAD / 2)[0])
            parts.append(f'<text x="{x_pos:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{html.escape(name)}</text>')
    else:
        for value in (x_low, x_high):
            x_pos = float(_scale(np.array([value]), x_low, x_high, PAD, WIDTH - PAD / 2)[0])
            parts.append(f'<text x="{x_pos:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{value:.4g}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">{html.escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _page(title: str, panels: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(caption)}</h2>{svg}" for caption, svg in panels)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "FinalObjectiveValue" not in frame:
        raise ValueError("the tuning job has no training job with an objective value yet")
    scored = frame.dropna(subset=["FinalObjectiveValue"])
    if scored.empty:
        raise ValueError("the tuning job has no training job with an objective value yet")
    return scored


def objective_chart(frame: pd.DataFrame, metric: str, minimize: bool, path: Path, title: str) -> Path:
    """x: when each training job ended (seconds from the first start); y: its objective; line: best so far."""
    scored = _scored(frame).sort_values("TrainingEndTime")
    origin = frame["TrainingStartTime"].dropna().min()
    x = np.array([(t - origin).total_seconds() for t in scored["TrainingEndTime"]], dtype=float)
    y = scored["FinalObjectiveValue"].to_numpy(dtype=float)
    best = np.minimum.accumulate(y) if minimize else np.maximum.accumulate(y)
    if path.suffix.lower() == ".png":
        return _png(path, title, [("seconds since the first training job started", metric, x, y, best, None)])
    path.write_text(_page(title, [(f"{metric} over time (red: best so far)",
                                   _svg_panel(x, y, best, "seconds since the first training job started", metric))]))
    return path


def hyperparameter_chart(frame: pd.DataFrame, metric: str, minimize: bool, path: Path, title: str) -> Path:
    """One panel per tuned hyperparameter: its value against the objective."""
    scored = _scored(frame)
    fixed = {"TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingStartTime", "TrainingEndTime",
             "TrainingElapsedTimeSeconds", "TrainingJobDefinitionName"}
    y = scored["FinalObjectiveValue"].to_numpy(dtype=float)
    panels: list[Panel] = []
    for name in [c for c in frame.columns if c not in fixed]:
        column = scored[name]
        if pd.api.types.is_numeric_dtype(column):
            panels.append((name, metric, column.to_numpy(dtype=float), y, None, None))
        else:
            categories = sorted(set(map(str, column)))
            codes = np.array([categories.index(str(v)) for v in column], dtype=float)
            panels.append((name, metric, codes, y, None, categories))
    if path.suffix.lower() == ".png":
        return _png(path, title, panels)
    path.write_text(_page(title, [(f"{n} vs {m}", _svg_panel(x, yy, None, n, m, cats)) for n, m, x, yy, _, cats in panels]))
    return path


def _png(path: Path, title: str, panels: list[Panel]) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("PNG charts need matplotlib (pip install matplotlib); .html charts need nothing") from exc
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 3.2 * len(panels)), squeeze=False)
    for axis, (x_label, y_label, x, y, best, categories) in zip(axes[:, 0], panels, strict=True):
        axis.scatter(x, y, s=18, alpha=0.8)
        if best is not None:
            axis.step(x, best, where="post", color="tab:red", label="best so far")
            axis.legend()
        if categories:
            axis.set_xticks(range(len(categories)), categories)
        axis.set_xlabel(x_label)
        axis.set_ylabel(y_label)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
