#!/usr/bin/env python3
"""Flags what the words checks do not see in texts people read, and counts it.

    tools/reasoner/read_texts.py --explain EXPLAIN.jsonl [--traces DIR] [--actfer BIN] [--show N]

--explain: the output of `actfer explain DIR --out EXPLAIN.jsonl`; every explanation is checked
against its interval's evidence (the AUs with intensities in the same line).
--traces: the trace folders of `actfer eval agent --traces DIR`; the first final answer's text of
each trace is checked against the AUs its steps showed.

A text is flagged when it
- cites an AU under another AU's name ("Brow Lowerer (AU5)");
- says "the movement is W" (or "slight to W") with an intensity word W other than the one the
  strongest AU it cites calls for (slight < 0.3 <= moderate < 0.55 <= marked < 0.8 <= strong);
- repeats a sentence;
- is under 30 characters or does not end a sentence (cut short).
On a clip whose motion showed AUs, the intensities are the motion steps' (au_evidence from
motion, optical_flow), as the answer's are.
The AU names come from `actfer facs aus --json`. Prints the counts and the first --show flagged
texts with their reasons; exit code 0 either way.
"""

import argparse
import json
import os
import re
import subprocess
import sys

WORDS = ["slight", "moderate", "marked", "strong"]


def word_for(x):
    if x < 0.3:
        return "slight"
    if x < 0.55:
        return "moderate"
    if x < 0.8:
        return "marked"
    return "strong"


def catalogue(actfer):
    out = subprocess.run([actfer, "facs", "aus", "--json"], check=True, capture_output=True, text=True)
    return {a["number"]: a["name"] for a in json.loads(out.stdout)}


def flaws(text, intensities, names):
    """The reasons `text` is flagged; `intensities` maps AU number -> intensity shown."""
    out = []
    cited = []
    for name, code in re.findall(r"([A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+)*) \(((?:AU|R|L)\d+)\)", text):
        n = int(re.sub(r"^(AU|R|L)", "", code))
        cited.append(n)
        if names.get(n) and not name.endswith(names[n]):
            out.append(f"{code} under the name {name!r}")
    strengths = [intensities[n] for n in cited if n in intensities]
    if strengths:
        want = word_for(max(strengths))
        for w in re.findall(r"(?:movements? (?:is|are|was) |slight to )(slight|moderate|marked|strong)", text):
            if w != want and not (w == "slight" and "range from slight" in text):
                out.append(f"says {w!r} where the strongest cited AU ({max(strengths):.2f}) is {want!r}")
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    if len(sentences) != len(set(sentences)):
        out.append("repeats a sentence")
    if len(text) < 30 or not text.rstrip().endswith((".", "!", "?")):
        out.append("cut short")
    return out


def explain_texts(path):
    for line in open(path):
        r = json.loads(line)
        for iv in r.get("intervals", []):
            shown = {int(re.sub(r"^(AU|R|L)", "", c)): x for c, x in iv["aus"]}
            yield f"{r['id']} {iv['onset']}-{iv['offset']}", iv["explanation"], shown


def trace_texts(root):
    for clip in sorted(os.listdir(root)):
        path = os.path.join(root, clip, "trace.json")
        if not os.path.exists(path):
            continue
        t = json.load(open(path))
        shown, moved = {}, {}
        for s in t["steps"]:
            if s["tool"]["name"] == "final_answer":
                text = s["tool"]["args"].get("text", "")
                yield clip, text, dict(moved or shown)
                break
            motion = s["tool"]["name"] == "optical_flow" or (
                s["tool"]["name"] == "au_evidence" and s["tool"]["args"].get("source") == "motion")
            for a in (s["observation"].get("data") or {}).get("aus", []) or []:
                n = int(re.sub(r"^(AU|R|L)", "", a["au"]))
                for d in [shown] + ([moved] if motion else []):
                    d[n] = max(d.get(n, 0.0), a["intensity"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--explain")
    ap.add_argument("--traces")
    ap.add_argument("--actfer", default="target/release/actfer")
    ap.add_argument("--show", type=int, default=5)
    args = ap.parse_args()
    if not args.explain and not args.traces:
        ap.error("give --explain and/or --traces")
    names = catalogue(args.actfer)
    for label, texts in [("explain", args.explain and explain_texts(args.explain)),
                         ("answer texts", args.traces and trace_texts(args.traces))]:
        if not texts:
            continue
        total, flagged, kinds = 0, [], {}
        for key, text, shown in texts:
            total += 1
            f = flaws(text, shown, names)
            if f:
                flagged.append((key, text, f))
                for reason in f:
                    k = reason.split(" ")[0] if reason.startswith(("says", "repeats", "cut")) else "wrong name"
                    kinds[k] = kinds.get(k, 0) + 1
        print(f"{label}: {len(flagged)} of {total} flagged {kinds}")
        for key, text, f in flagged[: args.show]:
            print(f"  {key}: {'; '.join(f)}\n    {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
