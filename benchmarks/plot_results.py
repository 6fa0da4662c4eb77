"""Bar chart of the benchmark table: linear-probe and kNN-20 accuracy of every row.

Reads the results files that ``fashion_mnist.py`` and ``bow.py`` write (nothing is
measured here, so it takes a few seconds) and draws one pair of horizontal bars per
row: the linear probe and the kNN-20 classifier, both trained on the 60,000 training
images' frozen features and scored on the 10,000 test images. The baselines come
first (raw pixels, the untrained encoders), then the methods, grouped by family; the
dashed lines mark raw pixels, what a method has to beat. The accuracy axis starts at
0.70, not 0: the differences that matter are a few points.

    python benchmarks/plot_results.py        # benchmarks/results/*.json -> accuracy.png
    python benchmarks/plot_results.py benchmarks/results/simclr.json --out simclr.png
"""

import argparse
import json
import re
from pathlib import Path

import records

# Method families: the classic pipeline without a network, then the README's methods
# table in its order; a row's family is read from the first word of its name.
FAMILIES = {
    "no network: bag of visual words": ("VisualBoW",),
    "predictive": ("rotation", "jigsaw", "context", "intruder"),
    "contrastive": ("simclr",),
    "generative": ("mae",),
    "predicting bags of words": ("bow",),
}
NAMES = {"simclr": "SimCLR", "mae": "MAE", "bow": "BoW", "VisualBoW": "VisualBoW"}
ENCODERS = {"cnn": "CNN", "resnet18": "ResNet-18", "vit_tiny": "ViT-Tiny",
            "vit_small": "ViT-Small"}
PROBES = (("linear_acc", "linear probe", "C0"), ("knn_acc", "kNN-20", "C1"))
AXIS_START = 0.70
# A row's name: "method [encoder]<, params>, fit on N images, budget<, probes on M>".
ROW = re.compile(r"^(?P<method>\S+) \[(?P<encoder>[^\]]+)\](?P<params>.*?), fit on "
                 r"(?P<n>\d+) images(?:, (?P<budget>[^,;]+))?(?P<rest>.*)$")


def family(name):
    if records.is_baseline(name):
        return "baselines"
    first = name.split()[0]
    return next((f for f, methods in FAMILIES.items() if first in methods), "other")


def encoder_label(text):
    """ "vit_tiny{"patch_size": 7}" -> "ViT-Tiny, patch_size=7"."""
    name, brace, kwargs = text.partition("{")
    label = ENCODERS.get(name, name)
    if brace:
        label += "".join(f", {k}={v}" for k, v in json.loads(brace + kwargs).items())
    return label


def label(name, row=None):
    """A short label: "SimCLR [CNN], 900 s" with the row's parameters on a second line."""
    if name == "raw pixels":
        return "raw pixels"
    untrained = re.match(r"^random-init \[(?P<encoder>[^\]]+)\](?P<rest>.*)$", name)
    if untrained:
        encoder, rest = untrained["encoder"], untrained["rest"].strip(", ")
        return f"untrained {encoder_label(encoder)}" + (f"\n{rest}" if rest else "")
    bow = re.match(r"^bow \[(?P<encoder>[^\]]+)\](?P<params>[^:]*), teacher: "
                   r"(?P<teacher>\S+) .*?, (?P<tbudget>[^,;]+); (?P<budget>.+)$", name)
    if bow:
        return (f"BoW [{ENCODERS.get(bow['encoder'], bow['encoder'])}], {bow['budget']}\n"
                f"after a {bow['teacher']} teacher, {bow['tbudget']}{bow['params']}")
    match = ROW.match(name)
    if not match:
        return name
    method = NAMES.get(match["method"], match["method"])
    encoder = ("patches" if match["encoder"].startswith("patches")
               else encoder_label(match["encoder"]))
    text = f"{method} [{encoder}]" + (f", {match['budget']}" if match["budget"] else "")
    if not match["budget"] and (row or {}).get("fit_transform_seconds") is not None:
        text += f", {row['fit_transform_seconds']:.0f} s"  # VisualBoW: fit and transform
    if int(match["n"]) != 60000:
        text += f" on {int(match['n']):,} images"
    details = ", ".join(part.strip(", ") for part in (match["params"], match["rest"])
                        if part.strip(", "))
    return text + (f"\n{details}" if details else "")


def grouped(results):
    """``[(heading, [(name, row), ...]), ...]``: the baselines in file order, then the
    families, each by fit budget and then by linear-probe accuracy, best first."""
    order = ["baselines", *FAMILIES, "other"]
    groups = {g: [] for g in order}
    for name, row in results.items():
        if row.get("linear_acc") is not None:
            groups[family(name)].append((name, row))
    for heading, rows in groups.items():
        if heading != "baselines":
            rows.sort(key=lambda item: (round(item[1].get("fit_seconds") or 0, -2),
                                        -item[1]["linear_acc"]))
    return [(g, rows) for g, rows in groups.items() if rows]


def plot(results, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped(results)
    slots = sum(1 + len(rows) for _, rows in groups)
    fig, ax = plt.subplots(figsize=(11, 0.2 + 0.42 * slots), layout="constrained")
    height = 0.38
    ticks, tick_labels, headings = [], [], []
    y = 0
    for heading, rows in groups:
        headings.append(y)
        ticks.append(y)
        tick_labels.append(heading)
        y += 1
        for name, row in rows:
            for k, (key, _, colour) in enumerate(PROBES):
                value = row.get(key)
                if value is None:
                    continue
                offset = (k - 0.5) * height
                ax.barh(y + offset, value - AXIS_START, height, left=AXIS_START,
                        color=colour)
                ax.text(value + 0.002, y + offset, f"{value:.3f}", va="center",
                        fontsize="small")
            ticks.append(y)
            tick_labels.append(label(name, row))
            y += 1
    raw = results.get("raw pixels", {})
    for key, probe, colour in PROBES:
        if raw.get(key) is not None:
            ax.axvline(raw[key], color=colour, linestyle="--", linewidth=1.2,
                       label=f"raw pixels, {probe}: {raw[key]:.3f}")
    for _, probe, colour in PROBES:  # the legend's bars
        ax.barh(float("nan"), 0, color=colour, label=probe)
    ax.set_yticks(ticks, tick_labels, fontsize="small")
    for tick, y_heading in zip(ax.get_yticklabels(), ticks, strict=True):
        if y_heading in headings:
            tick.set_fontweight("bold")
            tick.set_fontsize("medium")
    for y_heading in headings[1:]:
        ax.axhline(y_heading - 0.5, color="0.8", linewidth=0.8)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(y - 0.5, -0.5)  # first row at the top
    top = max(r.get(k) or 0 for _, rows in groups for _, r in rows for k, _, _ in PROBES)
    ax.set_xlim(AXIS_START, max(top + 0.02, AXIS_START + 0.05))
    ax.set_xlabel(f"test accuracy on 10,000 Fashion-MNIST images (axis from {AXIS_START:.2f})")
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    handles, names = ax.get_legend_handles_labels()
    order = [2, 3, 0, 1] if len(handles) == 4 else range(len(handles))
    ax.legend([handles[i] for i in order], [names[i] for i in order], loc="lower left",
              bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize="small", frameon=False)
    machine = records.machine_line(results)
    fig.suptitle("Fashion-MNIST: probes on frozen features, pretrained without labels on the "
                 "60,000 training images" + (f"\n{machine}" if machine else ""),
                 fontsize="medium")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path,
                        default=sorted(records.RESULTS.glob("*.json")),
                        help="results files (default: benchmarks/results/*.json)")
    parser.add_argument("--out", type=Path, default=records.RESULTS / "accuracy.png",
                        help="the picture (default %(default)s)")
    args = parser.parse_args(argv)
    print(f"saved {plot(records.load(args.files), args.out)}")


if __name__ == "__main__":
    main()
