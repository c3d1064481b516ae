#!/usr/bin/env python3
"""Draws a purge-sim timeline (purge-sim ... --timeline DIR) as a PNG:
entries deleted a second against the physical limit (partitions holding
entries in scope x their delete rate), with the cursors at work and the
purge invocations running on a second axis.

    python3 infra/simulator/chart.py DIR/sources.csv out.png "title"

Needs matplotlib (pip install matplotlib==3.11.2, in a virtualenv)."""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, out: str, title: str) -> None:
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    minutes = [int(r["at_s"]) / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.plot(minutes, [float(r["per_s"]) for r in rows], label="objects deleted / s", color="tab:blue")
    ax.plot(minutes, [float(r["limit_per_s"]) for r in rows], label="S3 limit / s (partitions in use x 3,500)",
            color="tab:red", linestyle="--")
    ax.set_xlabel("minutes since the grace ended")
    ax.set_ylabel("objects / s")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.plot(minutes, [int(r["cursors"]) for r in rows], label="cursors at work", color="tab:green", alpha=0.6)
    right.plot(minutes, [int(r["invocations"]) for r in rows], label="purge invocations", color="tab:gray",
               alpha=0.6)
    right.set_ylabel("cursors, invocations")
    right.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
