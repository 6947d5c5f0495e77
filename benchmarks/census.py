"""Census skeleton benchmark: the sampling half of `benchmarks/personas.py`.

Kept as its own command for the README's benchmark table; prints one JSON object with
the same fields as `personas.py`'s `sampling` (see there for their meaning).

Run: .venv/bin/python benchmarks/census.py [--n 1000000] [--seed 0] [--cold]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from personas import measure_sampling  # benchmarks/personas.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true", help="also time the IPF fit uncached")
    args = parser.parse_args()
    print(json.dumps(measure_sampling(args.n, args.seed, args.cold), indent=2))


if __name__ == "__main__":
    main()
