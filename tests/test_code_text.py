"""Code comments say why in words that stay true: no calendar date in the package, the configs or the
benchmarks (figures and dates live in docs/ beside the commands that produce them)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")


def test_no_calendar_date_in_code():
    found = []
    for top in ("metamusic", "configs", "benchmarks", "examples"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    for i, line in enumerate(open(path, encoding="utf-8"), 1):
                        if DATE.search(line):
                            found.append(f"{os.path.relpath(path, ROOT)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
