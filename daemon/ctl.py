"""``kartuctl``: the operator's tool. Its commands over the control socket arrive with the operator's-tools work."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("kartuctl: not in this version of kartud yet. Meanwhile the station is driven over MQTT "
          "(see docs/operating.md, 'Commands in this version').", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
