"""Markdown tables and plots of few-shot evaluation results (eval.json -> eval.md, eval.png)."""

from __future__ import annotations


def markdown(results: dict) -> str:
    """One table per K: each method's query NLL before and after adaptation, with 95% CIs."""
    cfg = results["config"]
    W = cfg.get("tune_windows", 1)
    unit = (f"{cfg['queries']} query windows of {cfg['length']} tokens" if W == 1 else
            f"{cfg['queries']} whole query tunes (K support tunes likewise), each up to {W} windows of "
            f"{cfg['length']} tokens ({W * (cfg['length'] - 1) + 1} tokens)")
    lines = [f"Meta-test styles: {', '.join(cfg['test_styles'])}. {cfg['episodes']} episodes per K, "
             f"{unit}; mean +- 95% CI.", ""]
    if "dropped" in cfg:
        from metamusic.data import dropped_summary

        lines += [f"From {cfg.get('test_root', 'eval.root')}: {dropped_summary(cfg['dropped'])}.", ""]
    tuning = dict(results.get("tuning", {}))
    oracle = tuning.pop("oracle", None)
    per_k = {k: v for k, v in tuning.items() if k.startswith("K=")}
    if per_k:  # {K: {row: choice}}; runs evaluated before per-K tuning have one {row: choice}
        lines.append("Baseline settings chosen on meta-val: " + "; ".join(
            f"{k}: " + ", ".join(f"{row} lr={v['lr']} steps={v['steps']}" for row, v in rows.items())
            for k, rows in per_k.items()))
        lines.append("")
    elif tuning:
        lines.append("Baseline settings chosen on meta-val: " + ", ".join(
            f"{k} lr={v['lr']} steps={v['steps']}" for k, v in tuning.items()))
        lines.append("")
    if oracle:
        lines.append("Style oracle (the best whole-support-pool adaptation, chosen on held-out support-pool "
                     "tunes): member and steps kept per style " + ", ".join(
                         f"{st} {v.get('member', 'joint')} {v['steps']}" for st, v in oracle.items()))
        lines.append("")
    for k, left in cfg.get("left_out", {}).items():
        lines += [f"Left out at {k} (too few tunes for K support + {cfg['queries']} query tunes): " + ", ".join(
            f"{st} ({why})" for st, why in left.items()), ""]
    for k, methods in results["methods"].items():
        lines += [f"### {k}", "",
                  "| method | steps | NLL before (nats) | NLL after (nats) | bits/event after | perplexity after | accuracy after |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in sorted(methods.items(), key=lambda kv: kv[1]["nll_nats"][-1]):
            n = "per style" if name == "oracle" else len(r["nll_nats"]) - 1
            lo, hi = r["perplexity_ci95"][0][-1], r["perplexity_ci95"][1][-1]
            lines.append(
                f"| {name} | {n} | {r['nll_nats'][0]:.3f} +- {r['nll_nats_ci95'][0]:.3f} | "
                f"{r['nll_nats'][-1]:.3f} +- {r['nll_nats_ci95'][-1]:.3f} | "
                f"{r['nll_bits'][-1]:.3f} +- {r['nll_bits_ci95'][-1]:.3f} | "
                f"{r['perplexity'][-1]:.2f} [{lo:.2f}, {hi:.2f}] | "
                f"{r['accuracy'][-1]:.3f} +- {r['accuracy_ci95'][-1]:.3f} |")
        lines.append("")
        if any("paired" in r for r in methods.values()):
            lines += paired_table(methods)
    fid = results.get("style_fidelity")
    if fid:
        chance = next(iter(fid.values()))["chance"]
        lines += ["### Style fidelity of generated melodies (relation-network scorer)", "",
                  f"Share of samples scored as the style adapted to, against other meta-test styles "
                  f"(chance {chance:.2f}); 'real tunes' are openings of held-out tunes of the style (the ceiling). "
                  "Every row is scored on the same draws of support tunes: 'minus real' is the paired "
                  "difference per draw, 'of real' the share of the real tunes' fidelity (bootstrap 95% CI).", "",
                  "| method | fidelity | minus real (paired) | of real |", "| --- | --- | --- | --- |"]
        for name, r in sorted(fid.items(), key=lambda kv: -kv[1]["fidelity"]):
            p, sh = r.get("paired_vs_real"), r.get("share_of_real")
            lines.append(f"| {name} | {r['fidelity']:.3f} +- {r['ci95']:.3f} ({r['samples']} samples) | "
                         + (f"{p['mean']:+.3f} +- {p['ci95']:.3f} | " if p else "- | ")
                         + (f"{sh['share']:.0%} [{sh['ci95'][0]:.0%}, {sh['ci95'][1]:.0%}] |"
                            if sh and sh["share"] is not None and sh["ci95"][0] is not None else "- |"))
        lines.append("")
    if results.get("style_fidelity_note"):
        lines += [f"Style fidelity: {results['style_fidelity_note']}.", ""]
    return "\n".join(lines)


def paired_table(methods: dict) -> list[str]:
    """Final-step NLL minus the joint model's and fine-tuning's on the same episodes (95% CI), and the share
    of the joint -> oracle headroom closed (bootstrap 95% CI)."""
    lines = ["Paired over the same episodes (final step; negative = better):", "",
             "| method | minus joint (nats) | minus finetune (nats) | headroom closed |", "| --- | --- | --- | --- |"]

    def diff(d):
        star = " *" if d["excludes_zero"] else ""
        return f"{d['mean']:+.4f} +- {d['ci95']:.4f}{star}"

    for name, r in sorted(methods.items(), key=lambda kv: kv[1]["nll_nats"][-1]):
        if "paired" not in r:
            continue
        h = r["headroom_closed"]
        share = "n/a (no headroom)" if h["share"] is None else (
            f"{h['share']:.1%} [{h['ci95'][0]:.1%}, {h['ci95'][1]:.1%}]" if h["ci95"][0] is not None
            else f"{h['share']:.1%}")
        lines.append(f"| {name} | {diff(r['paired']['vs_joint'])} | {diff(r['paired']['vs_finetune'])} | {share} |")
    over = [n for n, r in methods.items() if "paired" in r and (r["headroom_closed"]["share"] or 0) > 1]
    note = ([f"Above 100%: {', '.join(sorted(over))} beat the ceiling on these episodes, so here it is no upper bound "
             "(its fits too short, baselines.oracle_steps, or its held-out tunes too few); compare the paired "
             "differences instead.", ""] if over else [])
    return lines + ["", "(* the paired 95% CI excludes zero)", ""] + note


def plot(results: dict, path: str) -> None:
    """Query NLL against inner steps, one panel per K, one line per method (95% CI bands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = list(results["methods"].items())
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (k, methods) in zip(axes[0], panels):
        for name, r in methods.items():
            y, ci = np.array(r["nll_nats"]), np.array(r["nll_nats_ci95"])
            x = np.arange(len(y))
            ax.plot(x, y, marker="o" if len(y) > 1 else "s", label=name)
            ax.fill_between(x, y - ci, y + ci, alpha=0.2)
        ax.set_title(k)
        ax.set_xlabel("inner steps on the support tunes")
        ax.set_ylabel("query NLL per event (nats)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
