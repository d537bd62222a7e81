"""CPU of the Evolis driver's face rendering, step by step, on the benchmark's colour faces (issue 18)."""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kartud.hw.printer.panels import PanelSettings, render_face  # noqa: E402
from kartud.room.fake_people import fake_person, render_front  # noqa: E402


def faces(count: int = 16) -> list[bytes]:
    """The faces ``load.Jobs(seed=5)`` puts on the benchmark's colour jobs."""
    rng = random.Random(5)
    return [render_front(fake_person(rng, n), rng) for n in range(count)]


def cpu_per_face(step, faces_: list[bytes], rounds: int) -> float:
    """Median process CPU ms of ``step(face)`` over ``rounds`` passes of all faces."""
    per_round = []
    for _ in range(rounds):
        began = time.process_time()
        for face in faces_:
            step(face)
        per_round.append((time.process_time() - began) / len(faces_) * 1e3)
    return sorted(per_round)[len(per_round) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_kit/face_cost.py", description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of render_face")
    args = parser.parse_args()
    from PIL import Image

    settings = PanelSettings()
    faces_ = faces()
    render_face(faces_[0], settings)          # the overlay is built once per settings: not a card's cost
    decode = cpu_per_face(lambda f: Image.open(io.BytesIO(f)).convert("RGB"), faces_, args.rounds)
    render = cpu_per_face(lambda f: render_face(f, settings), faces_, args.rounds)
    print(f"load {os.getloadavg()[0]:.1f}: decode {decode:.2f} ms, render_face {render:.2f} ms a face "
          f"(median of {args.rounds} rounds of {len(faces_)} faces, process CPU)")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for face in faces_ * 3:
            render_face(face, settings)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(14)
    return 0


if __name__ == "__main__":
    sys.exit(main())
