"""Follow the results topic and keep a live turnout tally per municipality, printing each update.

    python examples/live_turnout.py                 # from the beginning, then follow new tallies
    python examples/live_turnout.py --max-events 500 --group my-dashboard

Uses ``pipelines.kafka.subscribe.subscribe``, so it reads the topics named by the ``BALLOTSTREAM_*`` settings. A newer
tally of a station (a correction) replaces the older one; a retraction removes it. The last line printed is
``FINAL {json}``: the tally per municipality.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from pipelines.kafka.subscribe import subscribe
from pipelines.settings import Settings


@dataclass
class Tally:
    registered: int = 0
    cast: int = 0
    stations: int = 0

    @property
    def turnout(self) -> float:
        return self.cast / self.registered if self.registered else 0.0


class TurnoutBoard:
    """Turnout per municipality from the current tally of each station."""

    def __init__(self) -> None:
        self.stations: dict[str, tuple[str, int, int]] = {}  # message key -> (municipality, registered, cast)
        self.municipalities: dict[str, Tally] = {}

    def _remove(self, key: str) -> None:
        old = self.stations.pop(key, None)
        if old is not None:
            tally = self.municipalities[old[0]]
            tally.registered, tally.cast, tally.stations = tally.registered - old[1], tally.cast - old[2], \
                tally.stations - 1

    def apply(self, event: dict) -> str | None:
        """Update from one event; returns the municipality whose tally changed, if any."""
        value = event["value"]
        if event["record_type"] == "StationTally":
            self._remove(event["key"])
            muni = value["municipality_id"]
            self.stations[event["key"]] = (muni, value["registered_voters"], value["ballots_cast"])
            tally = self.municipalities.setdefault(muni, Tally())
            tally.registered += value["registered_voters"]
            tally.cast += value["ballots_cast"]
            tally.stations += 1
            return muni
        if event["record_type"] == "Retraction" and value["target_key"] in self.stations:
            muni = self.stations[value["target_key"]][0]
            self._remove(value["target_key"])
            return muni
        return None

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: {"registered_voters": t.registered, "ballots_cast": t.cast, "stations": t.stations,
                    "turnout": round(t.turnout, 6)} for m, t in sorted(self.municipalities.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description="Live turnout per municipality from the results topic.")
    parser.add_argument("--max-events", type=int, default=None, help="stop after this many events")
    parser.add_argument("--new-only", action="store_true", help="start at the end instead of the beginning")
    parser.add_argument("--group", default=None, help="consumer group, to resume where the last run stopped")
    args = parser.parse_args()

    board = TurnoutBoard()
    events = subscribe(Settings.from_env(), "results", from_beginning=not args.new_only, follow=True,
                       group=args.group)
    try:
        for n, event in enumerate(events, start=1):
            muni = board.apply(event)
            if muni is not None:
                t = board.municipalities[muni]
                print(f"{muni}: turnout {t.turnout:.1%} ({t.cast:,} of {t.registered:,}, {t.stations} stations)",
                      flush=True)
            if args.max_events is not None and n >= args.max_events:
                break
    except KeyboardInterrupt:
        pass
    finally:
        events.close()
    print("FINAL " + json.dumps(board.summary()), flush=True)


if __name__ == "__main__":
    main()
