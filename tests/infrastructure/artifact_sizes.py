"""Size of each artifact `sam build` produced, as `sam deploy` uploads it.

    python3 tests/infrastructure/artifact_sizes.py [.aws-sam/build]

For every function and layer directory of the built template: the number of files, the unpacked size (sum of
the file sizes, what counts against Lambda's 250 MB unzipped limit) and the size of the zip that `sam deploy`
would upload, made the way the SAM CLI makes it (os.walk following links, ZIP_DEFLATED at zlib's default
level). Standard library only, so `make package` can run it with the functions' interpreter.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path


def sizes(folder: Path) -> tuple[int, int, int]:
    """(files, unpacked bytes, zipped bytes) of one artifact directory."""
    files = unpacked = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, names in os.walk(folder, followlinks=True):
            for name in sorted(names):
                path = Path(root, name)
                data = path.read_bytes()
                files += 1
                unpacked += len(data)
                archive.writestr(zipfile.ZipInfo(str(path.relative_to(folder))), data, zipfile.ZIP_DEFLATED)
    return files, unpacked, len(buffer.getvalue())


def human(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB" if count >= 1_000_000 else f"{count / 1_000:.0f} kB"


def main(argv: list[str]) -> int:
    build = Path(argv[1] if len(argv) > 1 else ".aws-sam/build")
    artifacts = sorted(p for p in build.iterdir() if p.is_dir())
    if not artifacts:
        print(f"no artifacts under {build}", file=sys.stderr)
        return 1
    width = max(len(p.name) for p in artifacts)
    print(f"{'artifact':<{width}}  {'files':>6}  {'unpacked':>9}  {'zipped':>9}")
    for folder in artifacts:
        files, unpacked, zipped = sizes(folder)
        print(f"{folder.name:<{width}}  {files:>6}  {human(unpacked):>9}  {human(zipped):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
