"""Run every benchmark: ``python -m bench.run_all`` (exit 1 if a target is missed or a bench fails).

The scale bench runs in its quick form (2k and 10k publications on both backends, under a minute);
``--full-scale`` runs its default sizes instead (1M publications on an Oxigraph server: most of an hour).
"""

from __future__ import annotations

import argparse

from bench import classification, load_throughput, scale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-scale", action="store_true", help="bench.scale at its default sizes, not --quick")
    args = ap.parse_args(argv)
    codes = [classification.main([]), load_throughput.main([]), scale.main([] if args.full_scale else ["--quick"])]
    return 1 if any(codes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
