"""Makes moto's ListObjectVersions start *after* a KeyMarker sent without a
VersionIdMarker, as S3 does ("keys lexicographically after the key
marker"), run by infra/bootstrap.sh after moto is installed.

moto 5.1.22 (and 5.2.5) keeps the marker's own key and drops the first
version at or after it: a key range that starts after a bound lost the
first entry of its first key on moto, and only on moto. Two lines of its
S3 backend are replaced; the script is idempotent and fails, naming the
file, when it finds neither the original lines nor the fixed ones (a moto
upgrade must then be looked at again).
"""

import importlib.util
import pathlib
import sys

ORIGINAL = """\
                    skip_versions = version.name < key_marker
                    continue
"""

FIXED = """\
                    # infra/moto/s3-key-marker.py: after the marker, as S3.
                    skip_versions = version.name <= key_marker
                    if skip_versions:
                        continue
"""


def main() -> int:
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        print("s3-key-marker: moto is not installed", file=sys.stderr)
        return 1
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "s3" / "models.py"
    text = path.read_text()
    if FIXED in text:
        return 0
    if text.count(ORIGINAL) != 1:
        print(f"s3-key-marker: {path} has changed; the KeyMarker fix does not apply", file=sys.stderr)
        return 1
    path.write_text(text.replace(ORIGINAL, FIXED))
    print(f"bootstrap: moto's ListObjectVersions starts after a KeyMarker ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
