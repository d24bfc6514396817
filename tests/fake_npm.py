"""A stand-in `npm` for the tests (which never reach the network): `npm pack SPEC ...
--pack-destination DIR` copies each package's tarball, named as npm names it
(`@scope/name@1.0.0` -> `scope-name-1.0.0.tgz`), from a folder that plays the registry."""

from __future__ import annotations

import stat
from pathlib import Path


def fake_npm(bin_dir: Path, tarballs: Path, code: int = 0) -> None:
    """Write the script into `bin_dir`; with `code` other than 0 it fails like a registry 404."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "npm"
    script.write_text(
        "#!/bin/sh\n"
        f"[ {code} -ne 0 ] && {{ echo 'npm error 404 Not Found' >&2; exit {code}; }}\n"
        'dest=""; while [ $# -gt 0 ]; do case "$1" in\n'
        '  --pack-destination) dest="$2"; shift 2;;\n'
        "  --*) shift;;\n"
        "  pack) shift;;\n"
        '  *) spec="${1#@}"; name=$(echo "${spec%@*}" | tr / -); version="${spec##*@}";\n'
        f'     cp "{tarballs}/$name-$version.tgz" "$dest/"; shift;;\n'
        "esac; done\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
