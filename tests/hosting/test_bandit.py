"""Bandit routing: Thompson sampling moves traffic to the better variant while exploring, its shares and
exploration floor, state round trips, endpoint updates, errors, and the bounded feedback log."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from forgeml.hosting.bandit import FeedbackLog, ThompsonSampling


def play(bandit: ThompsonSampling, rates: dict[str, float], rounds: int, seed: int) -> Counter[str]:
    """Route ``rounds`` requests; each is right with its variant's true rate and rewarded 1 or 0."""
    world = random.Random(seed)
    chosen: Counter[str] = Counter()
    for _ in range(rounds):
        variant = bandit.choose()
        chosen[variant] += 1
        bandit.reward(variant, 1.0 if world.random() < rates[variant] else 0.0)
    return chosen


def test_traffic_moves_to_the_better_variant_while_still_exploring() -> None:
    bandit = ThompsonSampling(["A", "B"], rng=random.Random(3))
    assert bandit.shares()["B"] == pytest.approx(0.5, abs=0.05)  # the prior is the same for both
    chosen = play(bandit, {"A": 0.3, "B": 0.9}, rounds=500, seed=5)
    shares = bandit.shares()
    assert shares["B"] > 0.8
    assert chosen["A"] > 0
    assert chosen["B"] > 400
    counts = bandit.counts()
    assert counts["A"]["pulls"] == chosen["A"] and counts["B"]["pulls"] == chosen["B"]
    assert counts["A"]["rewards"] + counts["B"]["rewards"] == 500
    for name in ("A", "B"):  # every reward adds exactly 1 to alpha + beta, from Beta(1, 1)
        assert counts[name]["alpha"] + counts[name]["beta"] == pytest.approx(2 + counts[name]["rewards"])


def test_seeded_runs_repeat_exactly() -> None:
    first = ThompsonSampling(["A", "B", "C"], rng=random.Random(42))
    second = ThompsonSampling(["A", "B", "C"], rng=random.Random(42))
    rates = {"A": 0.5, "B": 0.6, "C": 0.2}
    assert play(first, rates, 200, seed=1) == play(second, rates, 200, seed=1)
    assert first.counts() == second.counts()


def test_fractional_rewards_update_alpha_and_beta() -> None:
    bandit = ThompsonSampling(["A", "B"], rng=random.Random(1))
    bandit.reward("A", 0.25)
    bandit.reward("A", 1)
    assert bandit.counts()["A"] == {"alpha": 2.25, "beta": 1.75, "rewards": 2, "pulls": 0}
    assert bandit.counts()["B"] == {"alpha": 1.0, "beta": 1.0, "rewards": 0, "pulls": 0}


def test_shares_sum_to_one_and_follow_the_posteriors() -> None:
    bandit = ThompsonSampling(["A", "B", "C"], rng=random.Random(9))
    for _ in range(40):
        bandit.reward("A", 1.0)
        bandit.reward("B", 0.0)
    shares = bandit.shares(samples=4000)
    assert list(shares) == ["A", "B", "C"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["A"] > 0.9
    assert shares["B"] == 0.0


def test_min_share_puts_a_floor_under_exploration() -> None:
    bandit = ThompsonSampling(["A", "B", "C"], min_share=0.1, rng=random.Random(4))
    for _ in range(200):
        bandit.reward("A", 1.0)
        bandit.reward("B", 0.0)
        bandit.reward("C", 0.0)
    shares = bandit.shares()
    assert shares["B"] == pytest.approx(0.1) and shares["C"] == pytest.approx(0.1)
    assert shares["A"] == pytest.approx(0.8)
    chosen = Counter(bandit.choose() for _ in range(6000))
    for loser in ("B", "C"):
        assert 450 < chosen[loser] < 800  # about 10% each
    assert sum(chosen.values()) == 6000


def test_state_round_trips_through_json() -> None:
    bandit = ThompsonSampling(["A", "B"], min_share=0.05, rng=random.Random(2))
    play(bandit, {"A": 0.2, "B": 0.7}, rounds=60, seed=8)
    state = json.loads(json.dumps(bandit.to_state()))
    assert state["min_share"] == 0.05
    restored = ThompsonSampling.from_state(state, rng=random.Random(2))
    assert restored.variants == ["A", "B"]
    assert restored.min_share == 0.05
    assert restored.counts() == bandit.counts()
    assert restored.to_state() == bandit.to_state()
    with pytest.raises(ValueError, match="invalid posterior Beta"):
        ThompsonSampling.from_state({"variants": {"A": {"alpha": 0, "beta": 1}}})
    with pytest.raises(ValueError, match="non-empty 'variants'"):
        ThompsonSampling.from_state({"variants": {}})


def test_set_variants_keeps_remaining_posteriors() -> None:
    bandit = ThompsonSampling(["A", "B"], rng=random.Random(6))
    bandit.reward("A", 1.0)
    bandit.reward("B", 0.0)
    bandit.set_variants(["B", "C"])
    assert bandit.variants == ["B", "C"]
    assert bandit.counts() == {"B": {"alpha": 1.0, "beta": 2.0, "rewards": 1, "pulls": 0},
                               "C": {"alpha": 1.0, "beta": 1.0, "rewards": 0, "pulls": 0}}
    assert {bandit.choose() for _ in range(200)} <= {"B", "C"}
    with pytest.raises(ValueError, match="Unknown variant A: the bandit routes across B, C"):
        bandit.reward("A", 1.0)


def test_errors_name_the_variant_and_the_range() -> None:
    bandit = ThompsonSampling(["A", "B"], rng=random.Random(0))
    with pytest.raises(ValueError, match="Unknown variant Z: the bandit routes across A, B"):
        bandit.reward("Z", 0.5)
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="The reward for variant A must be a number between 0 and 1"):
            bandit.reward("A", bad)
    with pytest.raises(ValueError, match="at least one variant"):
        ThompsonSampling([])
    with pytest.raises(ValueError, match="repeated: A"):
        ThompsonSampling(["A", "B", "A"])
    with pytest.raises(ValueError, match="min_share must be between 0 and 1/2"):
        ThompsonSampling(["A", "B"], min_share=0.6)
    capped = ThompsonSampling(["A", "B"], min_share=0.4)
    with pytest.raises(ValueError, match="min_share must be between 0 and 1/3"):
        capped.set_variants(["A", "B", "C"])
    assert capped.variants == ["A", "B"]
    assert bandit.counts()["A"]["rewards"] == 0  # rejected rewards change nothing


def test_feedback_log_remembers_recent_inference_ids_and_evicts_least_recent() -> None:
    log = FeedbackLog(capacity=3)
    log.remember("r1", "A")
    log.remember("r2", "B")
    log.remember("r3", "A")
    assert log.variant_for("r1") == "A"  # r1 is now the most recently used
    log.remember("r4", "B")
    assert len(log) == 3
    assert log.variant_for("r2") is None
    assert [log.variant_for(name) for name in ("r1", "r3", "r4")] == ["A", "A", "B"]
    log.remember("r3", "B")
    assert log.variant_for("r3") == "B"
    assert FeedbackLog().capacity == 100_000
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        FeedbackLog(capacity=0)
