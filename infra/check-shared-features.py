#!/usr/bin/env python3
"""Fails when a dependency shared by the four functions has different
features in their builds.

`sam build` builds each function on its own (`cargo lambda build --bin X`),
and cargo resolves features for that function's package alone. A shared
crate with other features in one function is compiled again for it, and so
is everything above it: one differing serde feature made the intake's
release build a second full build of the AWS SDK. Usage:
check-shared-features.py PACKAGE... (run from the workspace root)."""
import subprocess
import sys


def features(package):
    out = subprocess.run(
        ["cargo", "tree", "--locked", "-p", package, "-e", "normal,build",
         "--prefix", "none", "-f", "{p}|{f}", "--target", "x86_64-unknown-linux-gnu"],
        check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        crate, _, feats = line.removesuffix(" (*)").partition("|")
        if "(/" in crate:  # a workspace member: its own features don't matter
            continue
        found.setdefault(crate, set()).update(f for f in feats.split(",") if f)
    return found


def main(packages):
    trees = {p: features(p) for p in packages}
    bad = []
    crates = sorted(set().union(*trees.values()))
    for crate in crates:
        seen = {p: t[crate] for p, t in trees.items() if crate in t}
        if len({frozenset(f) for f in seen.values()}) > 1:
            bad.append(crate + ": " + "; ".join(
                f"{p} [{','.join(sorted(f))}]" for p, f in seen.items()))
    if bad:
        print("check-shared-features: these dependencies have different features in the "
              "functions, so each function's release build compiles them (and all above "
              "them) again; turn the features on for all in [workspace.dependencies]:",
              file=sys.stderr)
        for line in bad:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"check-shared-features: {len(crates)} dependencies, same features in "
          + ", ".join(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
