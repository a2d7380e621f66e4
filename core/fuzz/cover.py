#!/usr/bin/env python3
"""Shrinks the `parse` fuzz corpus to a small set that keeps every coverage edge.

`cargo fuzz cmin` keeps, smallest first, every input that adds a feature, and
features include hit-count buckets, so it keeps well over a thousand inputs.
This script instead measures each input's edge features on its own (one
libFuzzer `-merge=1 -use_counters=0` run per input) and keeps a greedy set
cover: repeatedly the input that adds the most edges not yet covered
(smaller first on ties), until every edge is covered. Inputs named `seed_*`
(PROTOCOL.md's examples) are always kept.

Usage, from core/ after `cargo +nightly fuzz build parse`:

    python3 fuzz/cover.py fuzz/target/x86_64-unknown-linux-gnu/release/parse fuzz/corpus/parse

It rewrites the corpus directory in place and prints what it kept.
"""

import os
import shutil
import subprocess
import sys
import tempfile


def features_of(binary, path, scratch):
    """The edge features libFuzzer records for one input run alone."""
    inputs = os.path.join(scratch, "in")
    output = os.path.join(scratch, "out")
    control = os.path.join(scratch, "control")
    for directory in (inputs, output):
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
    if os.path.exists(control):
        os.remove(control)
    shutil.copy(path, inputs)
    subprocess.run(
        [binary, "-merge=1", "-use_counters=0", f"-merge_control_file={control}", output, inputs],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    features = set()
    with open(control) as lines:
        for line in lines:
            words = line.split()
            if words and words[0] == "FT":
                features.update(int(word) for word in words[2:])
    return features


def main():
    binary, corpus = sys.argv[1], sys.argv[2]
    names = sorted(os.listdir(corpus))
    with tempfile.TemporaryDirectory() as scratch:
        features = {name: features_of(binary, os.path.join(corpus, name), scratch) for name in names}
    size = {name: os.path.getsize(os.path.join(corpus, name)) for name in names}
    kept = [name for name in names if name.startswith("seed_")]
    covered = set().union(*(features[name] for name in kept)) if kept else set()
    every = set().union(*features.values())
    # Each turn covers at least one new edge, so this ends within len(names) turns.
    while covered != every:
        best = max(names, key=lambda name: (len(features[name] - covered), -size[name]))
        kept.append(best)
        covered |= features[best]
    for name in names:
        if name not in kept:
            os.remove(os.path.join(corpus, name))
    total = sum(size[name] for name in kept)
    print(f"kept {len(kept)} of {len(names)} inputs ({total} bytes), {len(every)} edge features")


if __name__ == "__main__":
    main()
