"""The English word list of the words checks (src/agent/words.rs): the union of the
english-words package's web2 and GCIDE lists (lower case, letters only), one word a line,
sorted, so the same package always gives the same bytes (tools/manifest.json pins them).

Usage: english_words.py WEB2_PICKLE GCIDE_PICKLE OUTPUT
The pickles hold plain Python sets of strings and come from a package whose sha256 set-up
checked before this runs."""

import os
import pickle
import sys


def main():
    *sources, out = sys.argv[1:]
    words = set()
    for path in sources:
        with open(path, "rb") as f:
            words |= {w for w in pickle.load(f) if w.isascii() and w.isalpha()}
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        for w in sorted(words):
            f.write(w + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
