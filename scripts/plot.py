#!/usr/bin/env python3
"""Draws PNG figures from the HDF5 results of `hogwild run` (layout: src/io/results.h).

Usage (with /usr/bin/python3 or .venv/bin/python: Debian's python3-matplotlib and python3-h5py):
    scripts/plot.py RESULTS... [--out DIR] [--problem ID] [--all-timelines] [--overwrite]

RESULTS are run files (*.h5) or sweep folders (every *.h5 directly inside). Figures, each
skipped with a printed reason when its data is absent:
  accuracy_vs_budget.png   accuracy (%) vs budget (forward passes), one line per run, from the
                           problems' /checkpoints tables (a run without them: its final accuracy
                           at its budget, one marker)
  throughput.png           tokens/s vs workers, and vs batch_problems (one line per setting of
                           the other keys that differ between the runs)
  time_breakdown.png       mean seconds per rank in compute, tensor all-reduce and worker
                           all-gather, one bar per run, grouped by grid (tensor x worker groups)
  timeline_RUN_PROBLEM.png each worker's steps over forward passes, with the redundancy checks,
                           the final answer and the finisher; for the first finished problem of
                           the first run, or --problem ID (in every run that has it), or every
                           problem of every run with --all-timelines
It also prints the accuracy of each run at each checkpoint.

--out defaults to plots/ beside the first RESULTS file (inside it, for a folder). An existing PNG
is an error naming it unless --overwrite. A path that is not a results file: one error line,
exit 2.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field

try:
    import h5py
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
except ImportError as missing:
    sys.exit(f"plot: needs numpy, h5py and matplotlib ({missing}): "
             "apt-get install python3-h5py python3-matplotlib")

try:
    import yaml  # Debian's python3-yaml: reads fallbacks from the run's config text
except ImportError:
    yaml = None


class InputError(Exception):
    """A bad argument or input file: printed as one line, exit 2."""


# Lane colours (Tableau 10, colour-blind friendly order) and the figure style.
COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
DEFAULT_NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan",
                 "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
                 "Victor", "Walter", "Wendy"]  # src/io/worker_names.cpp
DPI = 150
UMASK = os.umask(0)
os.umask(UMASK)
STYLE = {
    "font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.labelsize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#e3e3e3", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "legend.frameon": False, "legend.fontsize": 9, "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


# ---- reading --------------------------------------------------------------------------------

def text(value):
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def plain(value):
    """An attribute as a Python str/int/float."""
    if isinstance(value, (bytes, np.bytes_, str)):
        return text(value)
    if isinstance(value, np.ndarray):
        if value.shape != ():
            return [plain(v) for v in value.tolist()]
        value = value[()]
    return value.item() if hasattr(value, "item") else value


# What each optional table needs to be used; one without these fields is treated as absent.
TABLE_FIELDS = {"steps": ("worker", "step", "finished_pass"),
                "checkpoints": ("checkpoint", "correct"),
                "events": ("pass", "worker", "kind"),
                "timings": ("compute_seconds", "tensor_seconds", "worker_seconds")}
READ_NOTES = []  # tables left out while reading, printed with the figures' notes


def number(value):
    """A finite int/float, else None (absent, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and not math.isfinite(value) else value


def table(node, name, where):
    """A compound dataset as a structured array, or None if absent or without its fields."""
    if name not in node or not isinstance(node[name], h5py.Dataset):
        return None
    data = node[name][()]
    missing = [f for f in TABLE_FIELDS[name] if not data.dtype.names or f not in data.dtype.names]
    if missing:
        note = f"{where}: /{name} lacks {', '.join(missing)}; ignored"
        if note not in READ_NOTES:
            READ_NOTES.append(note)
        return None
    return data


@dataclass
class Problem:
    id: str
    name: str  # the group's name under /problems
    attrs: dict
    steps: object = None        # structured array or None
    checkpoints: object = None  # structured array or None
    events: object = None       # structured array or None
    worker_names: list = field(default_factory=list)  # groups under workers/
    worker_tokens: dict = field(default_factory=dict)  # name -> number of tokens

    @property
    def correct(self):
        value = number(self.attrs.get("correct"))
        return int(value) if value is not None else -1

    @property
    def forward_passes(self):
        return int(number(self.attrs.get("forward_passes")) or 0)

    @property
    def finished(self):
        return self.attrs.get("stop_reason", "") != "failed"

    def correct_at(self, checkpoint):
        """1 if the answer at `checkpoint` forward passes is right: that checkpoint's row; a
        problem that stopped by then keeps its final answer; else the last earlier row."""
        rows = self.checkpoints
        if rows is not None and len(rows):
            at = rows[rows["checkpoint"] == checkpoint]
            if len(at):
                return int(at["correct"][0] == 1)
        if self.forward_passes <= checkpoint:
            return int(self.correct == 1)
        if rows is not None and len(rows):
            earlier = rows[rows["checkpoint"] < checkpoint]
            if len(earlier):
                return int(earlier[np.argmax(earlier["checkpoint"])]["correct"] == 1)
        return 0


@dataclass
class Run:
    path: str
    attrs: dict
    config: dict
    varied: dict
    problems: list
    timings: object  # structured array or None
    label: str = ""
    stem: str = ""

    def get(self, key):
        """A run parameter: a root attribute, else the sweep's varied keys, else the config."""
        if key in self.attrs:
            return self.attrs[key]
        for name in PARAMETER_KEYS.get(key, (key,)):
            if name in self.varied:
                return self.varied[name]
            value = self.config
            for part in name.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None and not isinstance(value, (dict, list)):
                return value
        return None

    @property
    def scored(self):
        return [p for p in self.problems if p.correct in (0, 1)]

    def accuracy(self):
        """Final accuracy (%) over the problems with a reference answer, or None."""
        value = number(self.attrs.get("accuracy"))
        if value is not None:
            return 100.0 * value
        scored = self.scored
        return 100.0 * sum(p.correct for p in scored) / len(scored) if scored else None

    def checkpoint_values(self):
        values = set()
        for p in self.problems:
            if p.checkpoints is not None:
                values.update(int(c) for c in p.checkpoints["checkpoint"])
        return sorted(values)

    def checkpoint_accuracy(self):
        """{checkpoint: accuracy (%)} over the problems with a reference answer."""
        scored = self.scored
        if not scored:
            return {}
        return {c: 100.0 * sum(p.correct_at(c) for p in scored) / len(scored)
                for c in self.checkpoint_values()}

    def grid(self):
        """(tensor, worker_groups) from the attributes, else from /timings, else None."""
        tensor, groups = self.attrs.get("tensor"), self.attrs.get("worker_groups")
        if (tensor is None or groups is None) and self.timings is not None and len(self.timings):
            names = self.timings.dtype.names
            if tensor is None and "tensor_rank" in names:
                tensor = len(set(self.timings["tensor_rank"].tolist()))
            if groups is None and "group" in names:
                groups = len(set(self.timings["group"].tolist()))
        if tensor is None:
            tensor = self.get("tensor")
        if groups is None:
            groups = self.get("worker_groups")
        return (int(tensor), int(groups)) if tensor is not None and groups is not None else None


# Where a parameter may be found in `varied` or the config when it is no root attribute.
PARAMETER_KEYS = {"tensor": ("tensor", "parallel.tensor"),
                  "worker_groups": ("worker_groups", "parallel.worker_groups")}


def read_problem(path, name, group):
    attrs = {key: plain(value) for key, value in group.attrs.items()}
    problem = Problem(id=text(attrs.get("id", name)), name=name, attrs=attrs)
    for kind in ("steps", "checkpoints", "events"):
        setattr(problem, kind, table(group, kind, f"{path}: problem {problem.id}"))
    if "workers" in group and isinstance(group["workers"], h5py.Group):
        for worker, node in group["workers"].items():
            problem.worker_names.append(worker)
            if isinstance(node, h5py.Group) and "tokens" in node:
                problem.worker_tokens[worker] = int(node["tokens"].shape[0])
    return problem


def read_run(path):
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise InputError(f"plot: {path} is not a hogwild results file (not HDF5)") from None
    with handle as f:
        if "problems" not in f or not isinstance(f["problems"], h5py.Group):
            raise InputError(f"plot: {path} is not a hogwild results file (no /problems group)")
        attrs = {key: plain(value) for key, value in f.attrs.items()}
        config = {}
        if yaml is not None and isinstance(attrs.get("config"), str):
            try:
                loaded = yaml.safe_load(attrs["config"])
                config = loaded if isinstance(loaded, dict) else {}
            except yaml.YAMLError:
                config = {}
        varied = {}
        if isinstance(attrs.get("varied"), str):
            try:
                loaded = json.loads(attrs["varied"])
                varied = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                print(f"plot: {path}: attribute 'varied' is not a JSON object; ignored")
        problems = []
        for name, group in f["problems"].items():
            if not isinstance(group, h5py.Group):
                continue
            try:
                problems.append(read_problem(path, name, group))
            except (OSError, KeyError, ValueError, TypeError) as error:
                raise InputError(f"plot: {path}: cannot read problem '{name}': {error}") from None
        problems.sort(key=lambda p: (number(p.attrs.get("index")) or 0, p.id))
        try:
            timings = table(f, "timings", path)
        except (OSError, ValueError, TypeError) as error:
            raise InputError(f"plot: {path}: cannot read /timings: {error}") from None
    return Run(path=path, attrs=attrs, config=config, varied=varied, problems=problems,
               timings=timings)


def expand(inputs):
    """The run files named by RESULTS (a folder: every *.h5 directly inside, sorted)."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item)
                           if n.endswith(".h5") and os.path.isfile(os.path.join(item, n)))
            if not found:
                raise InputError(f"plot: folder {item} holds no *.h5 results files")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise InputError(f"plot: {item} does not exist")
    return files


def safe_name(value):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_") or "run"


def describe(run):
    """The legend name of a run: run_id, else method / workers / layout."""
    if run.attrs.get("run_id"):
        return str(run.attrs["run_id"])
    parts = []
    if run.get("method") is not None:
        parts.append(str(run.get("method")))
    workers = run.get("workers")
    if workers is not None:
        parts.append(f"{workers} worker" + ("" if workers == 1 else "s"))
    if run.get("layout") is not None:
        parts.append(str(run.get("layout")))
    return ", ".join(parts) or os.path.splitext(os.path.basename(run.path))[0]


def label_runs(runs):
    labels = [describe(r) for r in runs]
    stems = [safe_name(os.path.splitext(os.path.basename(r.path))[0]) for r in runs]
    for i, run in enumerate(runs):
        run.label = labels[i]
        if labels.count(labels[i]) > 1:
            run.label += f" ({os.path.basename(run.path)})"
        run.stem = stems[i]
        if stems.count(stems[i]) > 1:
            run.stem += f"-{stems[:i + 1].count(stems[i])}"


# ---- figures --------------------------------------------------------------------------------

class Skip(Exception):
    """A figure whose data is absent: the reason is printed and the others are drawn."""


def new_figure(width, height):
    return plt.figure(figsize=(width, height), dpi=DPI)


def percent_axis(ax):
    ax.set_ylim(-3, 103)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0f}%"))


def budget_axis(ax, values):
    """Linear passes; base-2 log when the checkpoints span 16x or more (they usually double)."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) >= 16:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if len(set(values)) <= 12:
        ax.set_xticks(sorted(set(values)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def accuracy_figure(runs, notes):
    lines, markers = [], []
    for run in runs:
        curve = run.checkpoint_accuracy()
        final = run.accuracy()
        budget = number(run.get("budget"))
        if curve:
            points = sorted(curve.items())
            if final is not None and budget is not None and int(budget) > points[-1][0]:
                points.append((int(budget), final))  # the final answer is the one at the budget
            lines.append((run, points))
        elif final is not None and budget is not None:
            markers.append((run, int(budget), final))
            notes.append(f"accuracy_vs_budget.png: {run.label}: no checkpoints; its final "
                         f"accuracy at its budget ({budget}) is one marker")
        else:
            why = "no problem with a reference answer" if final is None else "no budget"
            notes.append(f"accuracy_vs_budget.png: {run.label} left out ({why})")
    if not lines and not markers:
        raise Skip("no run has checkpoints or a final accuracy with a budget")

    def draw(path):
        fig = new_figure(8, 5)
        ax = fig.add_subplot()
        xs = []
        for i, (run, points) in enumerate(lines):
            x, y = zip(*points)
            xs += x
            ax.plot(x, y, marker="os^D"[i // 10 % 4], markersize=5, linewidth=2,
                    color=COLOURS[i % 10], linestyle=["-", "--", ":", "-."][i // 10 % 4],
                    label=run.label)
        for j, (run, budget, final) in enumerate(markers):
            xs.append(budget)
            ax.plot([budget], [final], linestyle="none", marker="D", markersize=8,
                    color=COLOURS[(len(lines) + j) % 10], markeredgecolor="black",
                    markeredgewidth=0.6, label=f"{run.label} (final only)")
        budget_axis(ax, xs)
        percent_axis(ax)
        ax.set_xlabel("budget (forward passes)")
        ax.set_ylabel("accuracy (% of problems with a reference answer)")
        counts = sorted({len(r.scored) for r in runs})
        ax.set_title("Accuracy vs budget" + (
            f" ({counts[0]} problem{'' if counts[0] == 1 else 's'})" if len(counts) == 1 else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        save(fig, path)

    return [("accuracy_vs_budget.png", draw)]


def parameter_table(runs):
    """Each run's parameters: the usual ones plus every key the sweeps say they varied."""
    keys = ["method", "layout", "workers", "batch_problems", "tensor", "worker_groups"]
    for run in runs:
        keys += [k for k in run.varied if k not in keys and k not in
                 sum(PARAMETER_KEYS.values(), ())]
    return keys, [{k: run.get(k) for k in keys} for run in runs]


def series(runs, x_key):
    """Lines of (x, tokens/s): runs that agree on every parameter which differs between the runs,
    except x_key. Returns [(label, [(x, y, run)])], and the runs left out with the reason."""
    keys, params = parameter_table(runs)
    differing = [k for k in keys if k != x_key and len({json.dumps(p[k], sort_keys=True)
                                                         for p in params}) > 1]
    groups, left_out = {}, []
    for run, p in zip(runs, params):
        speed = number(run.attrs.get("tokens_per_second"))
        if speed is None:
            left_out.append(f"{run.label} (no tokens_per_second: an interrupted run?)")
            continue
        if number(p[x_key]) is None:
            left_out.append(f"{run.label} (no {x_key})" if p[x_key] is None else
                            f"{run.label} ({x_key} {p[x_key]!r} is not a number)")
            continue
        key = tuple((k, p[k]) for k in differing)
        groups.setdefault(key, []).append((p[x_key], float(speed), run))
    lines = []
    for key, points in groups.items():
        label = ", ".join(f"{v}" if k in ("method", "layout") else f"{k}={v}" for k, v in key
                          if v is not None) or "all runs"
        lines.append((label, sorted(points, key=lambda t: t[0]), key[0][1] if key else None))
    return sorted(lines, key=lambda line: line[0]), left_out


def throughput_figure(runs, notes):
    panels = []
    for x_key, x_label in (("workers", "workers"), ("batch_problems", "problems per batch")):
        lines, left_out = series(runs, x_key)
        for why in left_out:
            notes.append(f"throughput.png ({x_key} panel): left out {why}")
        values = sorted({point[0] for _, points, _ in lines for point in points}, key=str)
        if len(values) > 1:
            panels.append((x_key, x_label, lines))
        elif values:
            notes.append(f"throughput.png: no {x_key} panel (every run has {x_key} "
                         f"{values[0]})")
        else:
            notes.append(f"throughput.png: no {x_key} panel (no run has tokens/s and {x_key})")
    if not panels:
        raise Skip("no two runs differ in workers or batch_problems (with tokens_per_second)")

    def draw(path):
        fig = new_figure(6 * len(panels) + 1, 4.8)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (x_key, x_label, lines) in zip(axes, panels):
            xs = []
            # One colour per value of the first differing key (the method, usually), one line
            # style per line within it.
            families = list(dict.fromkeys(json.dumps(line[2]) for line in lines))
            seen = {}
            for label, points, family in lines:
                f = families.index(json.dumps(family))
                k = seen[f] = seen.get(f, -1) + 1
                x = [p[0] for p in points]
                y = [p[1] for p in points]
                xs += x
                ax.plot(x, y, marker="os^Dv"[k % 5], markersize=6, linewidth=2,
                        color=COLOURS[f % 10], linestyle=["-", "--", ":", "-."][k % 4],
                        label=label)
            ax.set_xticks(sorted(set(xs)))
            ax.set_ylim(bottom=0)
            ax.set_xlabel(x_label)
            ax.set_ylabel("aggregate throughput (generated tokens/s)")
            ax.set_title(f"Throughput vs {x_label}")
        fig.tight_layout()
        for ax in axes:  # under each panel: lines of one sweep may be many
            ax.legend(loc="upper left", bbox_to_anchor=(0, -(0.55 * DPI) /
                                                        ax.get_window_extent().height),
                      borderaxespad=0)
        save(fig, path)

    return [("throughput.png", draw)]


def time_figure(runs, notes):
    bars = []
    for run in runs:
        t = run.timings
        if t is None or not len(t):
            notes.append(f"time_breakdown.png: {run.label} has no /timings table")
            continue
        grid = run.grid() or (1, len(t))
        bars.append((grid, run, [float(np.mean(t[k])) for k in
                                 ("compute_seconds", "tensor_seconds", "worker_seconds")]))
    if not bars:
        raise Skip("no run has a /timings table")
    bars.sort(key=lambda b: (b[0][0] * b[0][1], b[0], b[1].label))
    # One row per run (its label on the left), under a header row per grid.
    rows, headers = [], []
    for grid in sorted({b[0] for b in bars}, key=lambda g: (g[0] * g[1], g)):
        headers.append((len(rows) + len(headers), grid))
        for bar in bars:
            if bar[0] == grid:
                rows.append((len(rows) + len(headers), bar))

    def draw(path):
        count = len(rows) + len(headers)
        fig = new_figure(11, 1.3 + 0.42 * count)
        ax = fig.add_subplot()
        parts = [("compute", "#4e79a7"), ("tensor all-reduce", "#f28e2b"),
                 ("worker all-gather", "#e15759")]
        y = np.array([at for at, _ in rows])
        left = np.zeros(len(rows))
        for k, (name, colour) in enumerate(parts):
            values = np.array([b[2][k] for _, b in rows])
            ax.barh(y, values, 0.64, left=left, color=colour, label=name, edgecolor="white",
                    linewidth=0.8)
            left += values
        right = float(left.max()) if len(left) and left.max() > 0 else 1.0
        for (at, (grid, run, (compute, tensor, worker))), total in zip(rows, left):
            share = 100.0 * (tensor + worker) / total if total > 0 else 0.0
            ax.text(total + 0.01 * right, at, f"{total:.3g} s · {share:.0f}% communication",
                    va="center", fontsize=8, color="#333333")
        for at, (tensor, groups) in headers:
            ax.text(0, at + 0.25, f"tensor {tensor} × worker groups {groups}", fontsize=9.5,
                    fontweight="bold", va="center", ha="left", color="#222222")
        ax.set_yticks(y)
        ax.set_yticklabels([shorten(b[1].label, 90) for _, b in rows], fontsize=8.5)
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(count - 0.5, -0.45)
        ax.set_xlim(0, right * 1.3)
        ax.set_xlabel("mean seconds per rank (decode loop)")
        ax.set_title("Where the decode time goes, per grid (tensor-parallel ranks × worker "
                     "groups)", loc="left")
        ax.grid(axis="y", visible=False)
        ax.spines["left"].set_visible(False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -(0.5 * DPI) /
                                                      ax.get_window_extent().height),
                  ncol=3, borderaxespad=0)
        save(fig, path)

    return [("time_breakdown.png", draw)]


def worker_labels(run, problem, count):
    """Lane names: the config's `names`, else the default names when the file has them."""
    names = run.config.get("names") if isinstance(run.config.get("names"), list) else None
    if names is None and set(DEFAULT_NAMES[:count]) <= set(problem.worker_names) and count <= 20:
        names = DEFAULT_NAMES[:count]
    if names is None or len(names) < count:
        return [f"worker {i}" for i in range(count)], None
    return [str(n) for n in names[:count]], [str(n) for n in names[:count]]


def step_spans(steps):
    """[(worker, step, start, end)] in passes; started_pass when stored, else the worker's
    previous finished_pass (0 for its first step)."""
    has_start = "started_pass" in steps.dtype.names
    last_end, spans = {}, []
    for row in steps:
        worker = int(row["worker"])
        end = int(row["finished_pass"])
        start = int(row["started_pass"]) if has_start else last_end.get(worker, 0)
        spans.append((worker, int(row["step"]), start, end))
        last_end[worker] = max(last_end.get(worker, 0), end)
    return spans, last_end


def events_of(problem, kind):
    e = problem.events
    if e is None or not len(e):
        return []
    return [(int(r["pass"]), int(r["worker"])) for r in e if text(r["kind"]) == kind]


def shorten(value, limit):
    value = " ".join(value.split())
    return value if len(value) <= limit else value[:limit - 1] + "…"


def timeline_figure(run, problem):
    steps = problem.steps
    written = sum(problem.worker_tokens.values())
    if (steps is None or not len(steps)) and not written:
        raise Skip("no steps and no tokens")
    # A short run may have no finished step: each worker's lane is then one unfinished step.
    spans, last_end = step_spans(steps) if steps is not None else ([], {})
    workers = max([s[0] + 1 for s in spans] + [int(number(run.get("workers")) or 0),
                                               len(problem.worker_tokens), 1])
    names, file_names = worker_labels(run, problem, workers)
    end = max([problem.forward_passes] + [s[3] for s in spans])
    if end <= 0:
        raise Skip("no forward passes")
    checks = events_of(problem, "check")
    answers = events_of(problem, "answer")
    finishers = events_of(problem, "finisher")
    answer_pass = answers[-1][0] if answers else problem.forward_passes
    finisher_pass = finishers[0][0] if finishers else None
    lane_height = 0.62

    def draw(path):
        height = 1.9 + 0.55 * workers
        fig = new_figure(12, height)
        ax = fig.add_subplot()
        x_max = end * 1.02 if end > 0 else 1
        ax.set_xlim(0, x_max)
        ax.set_ylim(workers - 0.5, -0.5 - (0.55 if workers <= 3 else 0.35))
        fig.canvas.draw()  # for the pixel widths of the bars
        pixels_per_pass = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
        char_pixels = 0.62 * 7.5 * DPI / 72

        for worker, step, start, stop in spans:
            colour = COLOURS[worker % 10]
            ax.add_patch(Rectangle((start, worker - lane_height / 2), max(stop - start, 0.3),
                                   lane_height, facecolor=colour, edgecolor="white",
                                   linewidth=1.2, zorder=2))
            label = str(step)
            if (stop - start) * pixels_per_pass > char_pixels * len(label) + 6:
                ax.text((start + stop) / 2, worker, label, ha="center", va="center",
                        fontsize=7.5, color="white", fontweight="bold", zorder=3)
        # What each worker wrote after its last finished step: an unfinished step.
        stop_at = finisher_pass if finisher_pass is not None else problem.forward_passes
        for worker in range(workers):
            name = file_names[worker] if file_names else None
            begun = last_end.get(worker, 0)
            tokens = problem.worker_tokens.get(name) if name else None
            if stop_at > begun and (tokens is None or tokens > 0):
                ax.add_patch(Rectangle((begun, worker - lane_height / 2), stop_at - begun,
                                       lane_height, facecolor=COLOURS[worker % 10], alpha=0.28,
                                       edgecolor=COLOURS[worker % 10], hatch="////",
                                       linewidth=0, zorder=1))
        if finisher_pass is not None:
            ax.axvspan(finisher_pass, max(answer_pass, finisher_pass + 0.5), color="#555555",
                       alpha=0.12, zorder=0, linewidth=0)
            ax.axvline(finisher_pass, color="#555555", linestyle="--", linewidth=1.2, zorder=4)
            ax.annotate("finisher", xy=(finisher_pass, -0.5), xytext=(-4, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize=8,
                        color="#333333", zorder=5)
        for at, worker in checks:
            lanes = range(workers) if worker < 0 else [worker]
            for lane in lanes:
                ax.plot([at], [lane - lane_height / 2], marker="v", markersize=7,
                        color="#222222", markeredgecolor="white", markeredgewidth=0.8,
                        linestyle="none", zorder=6, clip_on=False)
        correct = problem.correct
        answer_colour = {1: "#2e8b3e", 0: "#c0392b"}.get(correct, "#555555")
        verdict = {1: " ✓", 0: " ✗"}.get(correct, "")
        answer_text = text(problem.attrs.get("answer", "")) or "(none)"
        ax.axvline(answer_pass, color=answer_colour, linewidth=2, zorder=5)
        worker_of_answer = problem.attrs.get("answer_worker", answers[-1][1] if answers else -1)
        if isinstance(worker_of_answer, int) and 0 <= worker_of_answer < workers:
            ax.plot([answer_pass], [worker_of_answer], marker="*", markersize=15,
                    color=answer_colour, markeredgecolor="white", zorder=7, clip_on=False)
        source = problem.attrs.get("answer_source")
        note = f"answer: {shorten(answer_text, 30)}{verdict}"
        reference = text(problem.attrs.get("reference_answer", ""))
        if reference and correct == 0:
            note += f" (reference {shorten(reference, 20)})"
        if source:
            note += f"\nsource: {source}"
        # Right of the line (the answer usually ends the timeline; the finisher's label is left).
        ax.annotate(note, xy=(answer_pass, -0.5), xytext=(5, 2), textcoords="offset points",
                    ha="left", va="bottom", fontsize=8.5, color=answer_colour,
                    fontweight="bold", zorder=7, annotation_clip=False)

        ax.set_yticks(range(workers))
        ax.set_yticklabels(names)
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="y", visible=False)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("forward passes")
        stop = problem.attrs.get("stop_reason", "?")
        ax.set_title(f"Problem {problem.id}  ·  {run.label}", loc="left", pad=30)
        ax.annotate(shorten(f"Q: {text(problem.attrs.get('question', ''))}", 140) +
                    f"\nstop: {stop}  ·  {problem.forward_passes} forward passes  ·  "
                       f"{number(problem.attrs.get('seconds')) or 0:.3g} s  ·  "
                    f"{number(problem.attrs.get('generated_tokens')) or 0} tokens  ·  "
                    f"{len(spans)} finished steps",
                    xy=(0, 1), xycoords="axes fraction", xytext=(0, 4),
                    textcoords="offset points", fontsize=8.5, color="#555555", va="bottom")
        handles = [Patch(facecolor=COLOURS[0], label="step (its number inside)"),
                   Patch(facecolor=COLOURS[0], alpha=0.28, hatch="////", label="unfinished step")]
        if checks:
            handles.append(Line2D([], [], marker="v", linestyle="none", color="#222222",
                                  label="redundancy check"))
        handles.append(Line2D([], [], color=answer_colour, linewidth=2, label="final answer"))
        if finisher_pass is not None:
            handles.append(Patch(facecolor="#555555", alpha=0.25, label="forced-answer finisher"))
        # Below the x label: the space right of the lanes is the answer's.
        below = -(0.62 * DPI) / ax.get_window_extent().height
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below),
                  ncol=len(handles), borderaxespad=0, handlelength=1.6, columnspacing=1.8)
        save(fig, path)

    return draw


def timeline_figures(runs, args, notes):
    chosen = []
    if args.all_timelines:
        chosen = [(run, p) for run in runs for p in run.problems]
    elif args.problem is not None:
        chosen = [(run, p) for run in runs for p in run.problems
                  if args.problem in (p.id, p.name)]
        if not chosen:
            raise InputError(f"plot: no run has problem '{args.problem}' (--problem)")
    else:
        finished = [p for p in runs[0].problems if p.finished]
        if not finished:
            raise Skip(f"{runs[0].label} has no finished problem")
        chosen = [(runs[0], finished[0])]
    figures = []
    for run, problem in chosen:
        try:
            figures.append((f"timeline_{run.stem}_{safe_name(problem.id)}.png",
                            timeline_figure(run, problem)))
        except Skip as why:
            notes.append(f"skipped timeline of problem {problem.id} ({run.label}): {why}")
    if not figures:
        raise Skip("no chosen problem has steps or tokens")
    return figures


def save(fig, path):
    """Writes the PNG under a temporary name and moves it in place."""
    folder = os.path.dirname(path)
    descriptor, staged = tempfile.mkstemp(prefix=".plot-", suffix=".png", dir=folder)
    os.close(descriptor)
    try:
        fig.savefig(staged, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.15)
        os.chmod(staged, 0o666 & ~UMASK)  # mkstemp made it private
        os.replace(staged, path)
    finally:
        plt.close(fig)
        if os.path.exists(staged):
            os.remove(staged)


# ---- table ----------------------------------------------------------------------------------

def print_table(runs):
    checkpoints = sorted({c for run in runs for c in run.checkpoint_values()})
    width = max(12, max(len(r.label) for r in runs))
    head = f"{'run':<{width}}  {'n':>3}" + "".join(f"  {c:>6}" for c in checkpoints) + \
        "   final"
    print("accuracy (%) per run at each checkpoint (forward passes); n = problems with a "
          "reference answer")
    print(head)
    for run in runs:
        curve = run.checkpoint_accuracy()
        cells = "".join(f"  {curve[c]:6.1f}" if c in curve else f"  {'-':>6}" for c in checkpoints)
        final = run.accuracy()
        print(f"{run.label:<{width}}  {len(run.scored):>3}{cells}  " +
              (f"{final:6.1f}" if final is not None else f"{'-':>6}"))


# ---- main -----------------------------------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="run files (*.h5) or sweep folders (every *.h5 directly inside)")
    parser.add_argument("--out", help="output folder (default: plots/ beside the first input)")
    parser.add_argument("--problem", help="draw the timeline of this problem id (every run)")
    parser.add_argument("--all-timelines", action="store_true",
                        help="draw the timeline of every problem of every run")
    parser.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    args = parser.parse_args(argv)

    files = expand(args.results)
    runs = [read_run(path) for path in files]
    label_runs(runs)
    first = args.results[0]
    out = args.out or (os.path.join(first, "plots") if os.path.isdir(first)
                       else os.path.join(os.path.dirname(os.path.abspath(first)), "plots"))

    notes, planned = [], []
    for name, make in (("accuracy_vs_budget.png", lambda: accuracy_figure(runs, notes)),
                       ("throughput.png", lambda: throughput_figure(runs, notes)),
                       ("time_breakdown.png", lambda: time_figure(runs, notes)),
                       ("timeline_*.png", lambda: timeline_figures(runs, args, notes))):
        try:
            planned += make()
        except Skip as why:
            notes.append(f"skipped {name}: {why}")

    # Every name is checked before anything is written: an error leaves the folder as it was.
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"plot: --out {out} exists and is not a folder")
    if not args.overwrite:
        for name, _ in planned:
            if os.path.exists(os.path.join(out, name)):
                raise InputError(f"plot: {os.path.join(out, name)} exists (pass --overwrite to "
                                 "replace it)")

    print_table(runs)
    for note in READ_NOTES + notes:
        print(note)
    with plt.rc_context(STYLE):
        for name, draw in planned:
            path = os.path.join(out, name)
            try:
                os.makedirs(out, exist_ok=True)
                draw(path)
            except OSError as error:
                raise InputError(f"plot: cannot write {path}: {error.strerror or error}") from None
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
