"""Where ``bench_live``'s batches take their tallies from (``choose_roles``): one region, anywhere, or a few
places at once."""

from __future__ import annotations

import random

import pytest

from benchmarks.bench_live import BenchmarkError, choose_roles, plan_batches


def _runs(indices: list[int]) -> int:
    """How many runs of consecutive numbers ``indices`` make."""
    ordered = sorted(indices)
    return sum(1 for i, x in enumerate(ordered) if i == 0 or x != ordered[i - 1] + 1)


def _by_batch(role: dict[int, tuple[str, int]], batch: int) -> tuple[list[int], list[int]]:
    new = [i for i, (kind, b) in role.items() if b == batch and kind == "new"]
    corrected = [i for i, (kind, b) in role.items() if b == batch and kind == "corrected"]
    return new, corrected


@pytest.mark.parametrize("places", [1, 3, 10])
def test_each_batch_comes_from_its_places_with_its_share_of_new_and_corrected_tallies(places):
    batches = plan_batches([40, 400, 4_000], 0.5)
    role = choose_roles(random.Random(7), 100_000, batches, "places", places)
    assert len(role) == 4_440  # a dict: no tally is given two roles
    for b_index, batch in enumerate(batches):
        new, corrected = _by_batch(role, b_index)
        assert (len(new), len(corrected)) == (batch.new, batch.corrected)
        # Adjacent places may touch and read as one run; never more runs than places.
        assert _runs(new + corrected) <= places
    # Drawn apart from each other at random, ten runs of 4,000 among 100,000 tallies are rarely all adjacent.
    assert _runs([i for i, (_, b) in role.items() if b == 2]) > 1 or places == 1


def test_a_batch_smaller_than_its_places_is_one_tally_a_place():
    role = choose_roles(random.Random(1), 1_000, plan_batches([4], 0.5), "places", 10)
    assert sorted(kind for kind, _ in role.values()) == ["corrected", "corrected", "new", "new"]


def test_region_is_one_run_and_random_is_drawn_from_everywhere():
    batches = plan_batches([1_000], 0.5)
    region = choose_roles(random.Random(7), 100_000, batches, "region")
    assert _runs(list(region)) == 1
    scattered = choose_roles(random.Random(7), 100_000, batches, "random")
    assert len(scattered) == 1_000 and _runs(list(scattered)) > 900


class _AlwaysFirst(random.Random):
    """Draws every run at the first tally: the second run always overlaps the first."""

    def randrange(self, *args, **kwargs) -> int:
        return 0


def test_places_that_cannot_fit_fail_with_a_message():
    batches = plan_batches([900, 50], 1.0)
    assert choose_roles(random.Random(7), 1_000, batches, "places", 1)  # drawn at random, they fit
    with pytest.raises(BenchmarkError, match="no free run of 50 tallies for batch 2"):
        choose_roles(_AlwaysFirst(), 1_000, batches, "places", 1)
