#!/usr/bin/env python3
"""Draws an `actfer train policy sft` run's log.csv (training loss per step, validation loss
where measured, learning rate) as a PNG.

Usage: $ACTFER_HOME/venv/bin/python tools/reasoner/plot_sft.py RUN/log.csv OUT.png"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    log, out = sys.argv[1:3]
    rows = list(csv.DictReader(open(log)))
    step = [int(r["step"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    lr = [float(r["lr"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(step, loss, label="training loss (assistant tokens, per token)", color="tab:blue")
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss", color="tab:orange")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(step, lr, color="tab:gray", lw=0.8, ls="--", label="learning rate")
    right.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)
    ax.set_title("Reasoner SFT (LoRA on SmolLM2-135M-Instruct)")
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()
