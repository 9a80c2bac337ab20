"""Run every benchmark: ``python -m bench.run_all`` (exit 1 if a target is missed)."""

from __future__ import annotations

from bench import classification, load_throughput


def main() -> int:
    codes = [classification.main([]), load_throughput.main([])]
    return 1 if any(codes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
