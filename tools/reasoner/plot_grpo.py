#!/usr/bin/env python3
"""Draws an `actfer train policy grpo` run's log.csv as a PNG: the mean of each reward term per
step, the task and total rewards, the zoom rate with the zoom utility U(q) and the verifier's
first-pass rate, and the KL to the reference with the loss.

Usage: $ACTFER_HOME/venv/bin/python tools/reasoner/plot_grpo.py RUN/log.csv OUT.png

Empty cells (U(q) where no group had both zoomed and unzoomed rollouts; KL and loss where no
group's rewards differed, so nothing was updated) are gaps in the lines."""

import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TERMS = ["format", "region", "au", "consistency", "emotion", "words", "utility"]


def column(rows, name):
    return [float(r[name]) if r[name] else math.nan for r in rows]


def main():
    log, out = sys.argv[1:3]
    rows = list(csv.DictReader(open(log)))
    step = [int(r["step"]) for r in rows]
    marker = "o" if len(rows) < 30 else None
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=110)

    ax = axes[0][0]
    for term in TERMS:
        ax.plot(step, column(rows, term), marker=marker, ms=3, label=term)
    ax.set_title("reward terms (mean over the step's rollouts, unweighted)")
    ax.set_ylabel("term")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[0][1]
    ax.plot(step, column(rows, "task"), marker=marker, ms=3, label="task reward R_task")
    ax.plot(step, column(rows, "total"), marker=marker, ms=3, label="total reward R")
    ax.set_title("rewards (weighted sums)")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    ax.plot(step, column(rows, "zoom_rate"), marker=marker, ms=3, label="zoom rate")
    ax.plot(step, column(rows, "first_pass"), marker=marker, ms=3, label="verifier first-pass rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share of rollouts")
    right = ax.twinx()
    right.plot(step, column(rows, "utility_q"), "s--", ms=3, color="tab:red", label="zoom utility U(q)")
    right.set_ylabel("U(q) (mean over groups where defined)")
    lines, more = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    ax.set_title("zooming and the verifier")

    ax = axes[1][1]
    ax.plot(step, column(rows, "kl"), marker=marker, ms=3, color="tab:purple", label="KL to the reference (per token)")
    ax.set_ylabel("KL (k3)")
    right = ax.twinx()
    right.plot(step, column(rows, "loss"), color="tab:gray", lw=0.8, ls="--", label="loss -J")
    right.set_ylabel("loss")
    lines, more = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    ax.set_title("policy update")

    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle("Reasoner UC-GRPO (LoRA on SmolLM2-135M-Instruct)")
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()
