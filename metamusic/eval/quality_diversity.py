"""Quality against diversity over a sampling-temperature sweep, and quality read at matched diversity.

"Language GANs falling short" (Caccia et al., ICLR 2020) showed that a GAN compared with
an MLE model at one temperature compares two points on different quality-diversity
trade-offs; sweeping the temperature turns each generator into a curve, and a fair
comparison reads every curve at the same diversity. Here the reference diversity is the
held-out tunes' own, on two axes (`AXES`), and the quality is MGEval overlap and style
fidelity (the GAN evaluation's measures, `gan_eval`). Plain numpy and matplotlib.
"""

from __future__ import annotations

import math

import numpy as np


# The diversity axes of the quality-diversity read, each with the held-out tunes' own value as the target.
# distinct 4-grams: monotone in temperature for every generator we measured. MGEval-feature diversity need
# not be: a generator that leaves bars empty at low temperature makes part-silent melodies, which lie far apart
# in feature space, so its feature diversity can rise as the temperature falls (the GANs with their own LSTM
# did; docs/design_notes.md#temperature-sweep).
AXES = (("distinct_4grams", "distinct 4-grams"), ("diversity", "feature diversity"))


def at_diversity(curve: list, key: str, target: float = 1.0, axis: str = "diversity", around: float = 1.0):
    """`key` read off a temperature curve where `axis` equals `target` (relative feature diversity 1.0, or the
    held-out tunes' distinct 4-gram rate), by linear interpolation between the two sweep points around it;
    where the curve crosses the target more than once, the crossing nearest the temperature `around` (the
    tables'); None where it never crosses."""
    pts = [(c["temperature"], c[axis], c[key]) for c in curve if key in c and np.isfinite(c[axis])]
    found = []
    for (t0, d0, v0), (t1, d1, v1) in zip(pts, pts[1:]):
        if min(d0, d1) <= target <= max(d0, d1):
            w = 0.0 if d1 == d0 else (target - d0) / (d1 - d0)
            found.append((abs(t0 + w * (t1 - t0) - around), float(v0 + (v1 - v0) * w)))
    return min(found)[1] if found else None


def matched(curve: list, targets: dict | None = None, around: float = 1.0) -> dict:
    """A method's quality at matched diversity (the held-out tunes' own, on each axis of `targets`, axis ->
    target value; feature diversity 1.0 by default), and its best point over the sweep."""
    targets = {"diversity": 1.0} if targets is None else targets
    out = {}
    for axis, target in targets.items():
        vals = [c[axis] for c in curve if np.isfinite(c[axis])]
        out[f"{axis}_range"] = [float(min(vals)), float(max(vals))] if vals else [math.nan, math.nan]
    for key in ("overlap_mean", "fidelity"):
        if key in curve[0]:
            for axis, target in targets.items():
                out[f"{key}_at_real_{axis}"] = at_diversity(curve, key, target, axis, around)
            best = max(curve, key=lambda c: c[key])
            out["best_" + key] = {"value": best[key], "temperature": best["temperature"],
                                  "diversity": best["diversity"], "distinct_4grams": best["distinct_4grams"]}
    return out


def _fmt(v) -> str:
    return "not crossed" if v is None else f"{v:.3f}"


def markdown_lines(k: str, rows: dict, temps: list) -> list:
    """The quality-diversity summary: each generator's quality where its temperature curve reaches the
    held-out tunes' diversity (on each axis), and its best point over the sweep."""
    if not rows or len(temps) < 2:
        return []
    has_fid = any("best_fidelity" in r for r in rows.values())
    quality = [("overlap_mean", "overlap")] + ([("fidelity", "fidelity")] if has_fid else [])
    head = ["method"] + [f"{name} over the sweep" for _, name in AXES]
    head += [f"{q} at real {name}" for _, name in AXES for _, q in quality]
    head += [f"best {q} (T)" for _, q in quality]
    lines = [f"Quality at matched diversity, {k} (temperatures {', '.join(f'{t:g}' for t in temps)}; each curve "
             "read by linear interpolation where it reaches the held-out tunes' own value, the crossing nearest "
             "the tables' temperature; distinct 4-grams is the axis that falls with temperature for every "
             "generator, feature diversity is not monotone for the GANs; `quality_diversity.png`):", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    first = AXES[0][0]
    order = sorted(rows, key=lambda n: -(rows[n].get(f"overlap_mean_at_real_{first}") or -1.0))
    for name in order:
        r = rows[name]
        cells = [f"{r[a + '_range'][0]:.2f}-{r[a + '_range'][1]:.2f}" for a, _ in AXES]
        cells += [_fmt(r.get(f"{q}_at_real_{a}")) for a, _ in AXES for q, _ in quality]
        cells += [f"{r['best_' + q]['value']:.3f} ({r['best_' + q]['temperature']:g})" if "best_" + q in r else "-"
                  for q, _ in quality]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot(results: dict, path: str, support_label: str, held_out_label: str) -> None:
    """Quality against diversity over the temperature sweep: MGEval overlap (and style fidelity when scored)
    against relative diversity, one line per generator, one row of panels per K; the dotted line is the
    held-out tunes' diversity, the star the support tunes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, c) for k, c in results.get("curves", {}).items() if c]
    if not panels:
        return
    keys = [("overlap_mean", "MGEval overlap with held-out tunes")]
    if any("fidelity" in pts[0] for c in dict(panels).values() for pts in c.values()):
        keys.append(("fidelity", "style fidelity"))
    fig, axes = plt.subplots(len(panels), len(keys), figsize=(7 * len(keys), 4.5 * len(panels)), squeeze=False)
    for row, (k, curves) in enumerate(panels):
        for col, (key, label) in enumerate(keys):
            ax = axes[row, col]
            for name, pts in curves.items():
                if key not in pts[0]:
                    continue
                x, y = [p["diversity"] for p in pts], [p[key] for p in pts]
                line, = ax.plot(x, y, "o-", label=name, ms=4)
                for p in pts:
                    ax.annotate(f"{p['temperature']:g}", (p["diversity"], p[key]), fontsize=6,
                                color=line.get_color(), xytext=(2, 2), textcoords="offset points")
            sup = results["methods"][k].get(support_label, {})
            if key in sup:
                ax.plot([sup["diversity"]], [sup[key]], "k*", ms=10, label=support_label)
            held = results["methods"][k].get(held_out_label, {})
            if key in held:
                ax.axhline(held[key], color="gray", lw=0.8, ls="--", label=held_out_label)
            ax.axvline(1.0, color="gray", lw=0.8, ls=":")
            ax.set_xlabel("relative diversity (1 = held-out tunes)")
            ax.set_ylabel(label)
            ax.set_title(f"{k}: {label} against diversity, temperature sweep")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
