"""Does a change to the readers or the melody extraction keep every tune's tokens? Parses every file of the
bundled corpus (or --root) with this code and with another checkout, no parse store, and compares each
file's records: tokens, bar positions, content hash and metadata, or skip reasons.

    git archive <commit> | tar -x -C /tmp/base
    python benchmarks/parse_diff.py --old-src=/tmp/base            # both versions in parallel, one process each

Prints the counts and the first files that differ; exits 1 when any does.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile


def _dump(src: str, root: str, out: str) -> None:
    """Runs inside a child process whose sys.path starts with `src`."""
    sys.path.insert(0, src)
    import metamusic
    from metamusic.data import EncodingConfig, files
    from metamusic.data import corpus as corpus_lib

    assert os.path.realpath(metamusic.__file__).startswith(os.path.realpath(src)), metamusic.__file__
    sources = corpus_lib.folder_sources(root) if root else corpus_lib.bundled_sources()
    enc = EncodingConfig()
    digest = lambda a: hashlib.sha1(a.astype("int16").tobytes()).hexdigest()
    records = {}
    for path in sorted(f for s in sources for f in s.files):
        records[os.path.relpath(path, root) if root else path] = [
            (r[0], digest(r[1]), digest(r[4]), str(r[2]), str(sorted(r[3].items()))) if r[0] == "ok"
            else tuple(map(str, r)) for r in files.tune_records(path, enc)]
    with open(out, "wb") as f:
        pickle.dump(records, f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-src", required=True, help="the other checkout's root (e.g. a `git archive` of a commit)")
    ap.add_argument("--root", default="", help="a folder of music files (default: the bundled corpus)")
    ap.add_argument("--json", default="", help="also write the counts and the differing files here")
    ap.add_argument("--_dump", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._dump:
        _dump(a._dump[0], a.root, a._dump[1])
        return 0
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = tempfile.mkdtemp(prefix="parse_diff_")
    outs = {name: os.path.join(tmp, f"{name}.pkl") for name in ("old", "new")}
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--old-src", a.old_src, "--root", a.root,
                               "--_dump", src, outs[name]], cwd=tmp)
             for name, src in (("old", a.old_src), ("new", here))]
    if any(p.wait() for p in procs):
        print("a parse failed", file=sys.stderr)
        return 2
    old, new = (pickle.load(open(outs[n], "rb")) for n in ("old", "new"))
    differ = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    n_rec = sum(len(v) for v in new.values())
    print(f"{len(new)} files, {n_rec} records ({sum(r[0] == 'ok' for v in new.values() for r in v)} tunes); "
          f"{len(differ)} files differ")
    for p in differ[:10]:
        print(f"  {p}: old {old.get(p, [])[:2]} new {new.get(p, [])[:2]}")
    if a.json:
        import json

        with open(a.json, "w") as f:
            json.dump({"old_src": a.old_src, "root": a.root or "music21-bundled", "files": len(new), "records": n_rec,
                       "differ": differ}, f, indent=1)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
