#!/usr/bin/env python3
"""Score a rollouts file with `actfer reward` and plot the reward terms to a PNG.

    python tools/reward/plot_rewards.py --rollouts R.jsonl --labels L.jsonl --png rewards.png \
        [--config C.toml] [--state S.json] [--scores scores.jsonl]

One histogram per term (format, region, au, consistency, emotion, utility, words), the total and the
advantage, and the mean of each term per gold emotion. Needs matplotlib (pinned in
tools/requirements.txt): run it with the venv's python, `$ACTFER_HOME/venv/bin/python`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actfer_reward import find_binary  # noqa: E402

TERMS = ["format", "region", "au", "consistency", "emotion", "utility", "words"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--config")
    ap.add_argument("--state")
    ap.add_argument("--scores", help="keep the score lines here (default: a temporary file)")
    ap.add_argument("--binary", help="the actfer binary (default: $ACTFER_BIN, PATH, target/release)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is missing: run this with $ACTFER_HOME/venv/bin/python "
                 "(pip install -r tools/requirements.txt)")

    with tempfile.TemporaryDirectory() as tmp:
        scores_path = args.scores or str(Path(tmp) / "scores.jsonl")
        cmd = [args.binary or find_binary(), "reward", "--rollouts", args.rollouts, "--labels", args.labels,
               "--out", scores_path, "--json"]
        if args.config:
            cmd += ["--config", args.config]
        if args.state:
            cmd += ["--state", args.state]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(run.stderr.strip())
        sys.stderr.write(run.stderr)
        summary = json.loads(run.stdout)["summary"]
        scores = [json.loads(line) for line in open(scores_path)]

    series = {t: [s["terms"][t] for s in scores] for t in TERMS}
    series["total"] = [s["total"] for s in scores]
    series["advantage"] = [s["advantage"] for s in scores]
    # one panel per series and one for the per-emotion means
    fig, axes = plt.subplots(2, 5, figsize=(20, 8))
    for ax, (name, values) in zip(axes.flat, series.items()):
        ax.hist(values, bins=30, color="#4477aa")
        ax.set_title(f"{name} (mean {sum(values) / len(values):.3f})")
    ax = axes.flat[-1]
    emotions = list(summary["per_emotion"])
    width = 0.8 / len(TERMS)
    for k, term in enumerate(TERMS):
        ax.bar([i + k * width for i in range(len(emotions))], [summary["per_emotion"][e]["means"][term] for e in emotions],
               width=width, label=term)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(emotions))], emotions, rotation=45, ha="right")
    ax.set_title("mean term per gold emotion")
    ax.legend(fontsize=7)
    fig.suptitle(f"{summary['rollouts']} rollouts, {summary['groups']} groups; "
                 f"skipped {summary['skipped_rollouts']} rollout and {summary['skipped_labels']} label lines")
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
