"""The search space: parsing and validating ParameterRanges, scaling, encode/decode, sampling, grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forgeml.errors import ValidationException
from forgeml.tuning.space import ParameterRange, SearchSpace


def cont(name: str, low: str, high: str, scaling: str | None = None) -> dict:
    item = {"Name": name, "MinValue": low, "MaxValue": high}
    if scaling is not None:
        item["ScalingType"] = scaling
    return item


def parse(**lists: list) -> SearchSpace:
    return SearchSpace.from_parameter_ranges(lists)


def rejects(ranges: dict, *fragments: str) -> str:
    with pytest.raises(ValidationException) as info:
        SearchSpace.from_parameter_ranges(ranges)
    message = info.value.message
    assert info.value.code == "ValidationException"
    for fragment in fragments:
        assert fragment in message, message
    return message


MIXED = {
    "IntegerParameterRanges": [cont("depth", "1", "12", "Linear"), cont("trees", "10", "1000", "Logarithmic")],
    "ContinuousParameterRanges": [
        cont("lr", "1e-5", "1e-1", "Logarithmic"),
        cont("momentum", "0", "0.999", "ReverseLogarithmic"),
        cont("dropout", "0", "0.5"),
    ],
    "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop"]},
                                   {"Name": "act", "Values": ["relu", "tanh"]}],
}


# -- parsing -----------------------------------------------------------------------------------------
def test_parses_all_kinds_in_sagemaker_order():
    space = SearchSpace.from_parameter_ranges(MIXED)
    assert space.names == ["depth", "trees", "lr", "momentum", "dropout", "optimizer", "act"]
    depth = space["depth"]
    assert (depth.kind, depth.min_value, depth.max_value, depth.scaling) == ("Integer", 1.0, 12.0, "Linear")
    assert space["optimizer"].values == ("sgd", "adam", "rmsprop")
    assert space["momentum"].effective_scaling == "ReverseLogarithmic"
    assert space.dim == 5 + 3 + 2
    assert len(space) == 7
    assert not space.categorical_only


def test_auto_scaling_is_log_for_two_decades_above_zero():
    space = parse(ContinuousParameterRanges=[cont("lr", "0.0001", "0.1"), cont("a", "1", "99"),
                                             cont("b", "0", "100"), cont("c", "1", "100", "Auto"),
                                             cont("d", "-1", "1000")],
                  IntegerParameterRanges=[cont("n", "1", "1000")])
    assert space["lr"].scaling == "Auto"
    assert space["lr"].effective_scaling == "Logarithmic"
    assert space["a"].effective_scaling == "Linear"  # less than two decades
    assert space["b"].effective_scaling == "Linear"  # min is not > 0
    assert space["c"].effective_scaling == "Logarithmic"  # exactly two decades
    assert space["d"].effective_scaling == "Linear"
    assert space["n"].effective_scaling == "Logarithmic"


def test_empty_or_missing_lists_make_an_empty_space():
    assert len(SearchSpace.from_parameter_ranges({})) == 0
    assert len(SearchSpace.from_parameter_ranges(None)) == 0
    assert parse(IntegerParameterRanges=[], CategoricalParameterRanges=[]).names == []


def test_numbers_may_be_given_as_json_numbers_and_integer_strings_with_a_zero_fraction():
    space = parse(IntegerParameterRanges=[{"Name": "n", "MinValue": 1, "MaxValue": "10.0"}],
                  ContinuousParameterRanges=[{"Name": "x", "MinValue": 0.5, "MaxValue": "2.5e0"}])
    assert (space["n"].min_value, space["n"].max_value) == (1.0, 10.0)
    assert space["x"].max_value == 2.5


# -- validation ----------------------------------------------------------------------------------------
def test_min_not_below_max_is_rejected_naming_the_member():
    rejects({"IntegerParameterRanges": [cont("a", "1", "5"), cont("b", "5", "5")]},
            "Value '5' at 'parameterRanges.integerParameterRanges.2.minValue'", "less than MaxValue")
    rejects({"ContinuousParameterRanges": [cont("x", "2.0", "1.0")]},
            "'parameterRanges.continuousParameterRanges.1.minValue'")


def test_logarithmic_needs_a_range_above_zero():
    rejects({"ContinuousParameterRanges": [cont("x", "0", "1", "Logarithmic")]},
            "Value '0' at 'parameterRanges.continuousParameterRanges.1.minValue'", "Logarithmic")
    rejects({"IntegerParameterRanges": [cont("n", "-3", "10", "Logarithmic")]},
            "'parameterRanges.integerParameterRanges.1.minValue'", "greater than 0")


def test_reverse_logarithmic_needs_continuous_range_in_zero_one():
    rejects({"ContinuousParameterRanges": [cont("m", "0.5", "1", "ReverseLogarithmic")]},
            "Value '1' at 'parameterRanges.continuousParameterRanges.1.maxValue'", "[0, 1)")
    rejects({"ContinuousParameterRanges": [cont("m", "-0.1", "0.9", "ReverseLogarithmic")]},
            "'parameterRanges.continuousParameterRanges.1.minValue'", "[0, 1)")
    rejects({"IntegerParameterRanges": [cont("n", "0", "1", "ReverseLogarithmic")]},
            "'parameterRanges.integerParameterRanges.1.scalingType'", "integer")
    space = parse(ContinuousParameterRanges=[cont("m", "0", "0.9999", "ReverseLogarithmic")])
    assert space["m"].effective_scaling == "ReverseLogarithmic"


@pytest.mark.parametrize("low, high, bad", [("abc", "3", "minValue"), ("1", "", "maxValue"),
                                            ("nan", "3", "minValue"), ("1", "inf", "maxValue"),
                                            ("1.5", "3", "minValue")])
def test_numbers_that_do_not_parse_are_rejected(low, high, bad):
    rejects({"IntegerParameterRanges": [cont("n", low, high)]},
            f"'parameterRanges.integerParameterRanges.1.{bad}'")


def test_continuous_bounds_must_be_numbers():
    rejects({"ContinuousParameterRanges": [cont("x", "0", "one")]},
            "Value 'one' at 'parameterRanges.continuousParameterRanges.1.maxValue'", "be a number")
    rejects({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0"}]},
            "Value 'null' at 'parameterRanges.continuousParameterRanges.1.maxValue'", "not be null")
    rejects({"ContinuousParameterRanges": [{"Name": "x", "MinValue": [0], "MaxValue": "1"}]}, "minValue")


def test_duplicate_names_are_rejected_across_lists():
    message = rejects({"IntegerParameterRanges": [cont("a", "1", "5")],
                       "CategoricalParameterRanges": [{"Name": "a", "Values": ["x"]}]},
                      "Value 'a' at 'parameterRanges.categoricalParameterRanges.1.name'", "unique")
    assert "integerParameterRanges.1" in message


def test_more_than_thirty_ranges_in_total_are_rejected():
    ints = [cont(f"i{k}", "1", "5") for k in range(20)]
    conts = [cont(f"c{k}", "0", "1") for k in range(11)]
    rejects({"IntegerParameterRanges": ints, "ContinuousParameterRanges": conts},
            "31 ranges", "'parameterRanges'", "at most 30")
    parse(IntegerParameterRanges=ints, ContinuousParameterRanges=conts[:10])  # exactly 30 is fine


def test_categorical_values_rules():
    rejects({"CategoricalParameterRanges": [{"Name": "c", "Values": []}]},
            "'parameterRanges.categoricalParameterRanges.1.values'", "greater than or equal to 1")
    rejects({"CategoricalParameterRanges": [{"Name": "c", "Values": [str(k) for k in range(31)]}]},
            "Value '31 values' at 'parameterRanges.categoricalParameterRanges.1.values'", "less than or equal to 30")
    rejects({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", 3]}]},
            "'parameterRanges.categoricalParameterRanges.1.values.2'", "be a string")
    rejects({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "a"]}]}, "unique")
    rejects({"CategoricalParameterRanges": [{"Name": "c"}]}, "values", "not be null")
    assert parse(CategoricalParameterRanges=[{"Name": "c", "Values": [str(k) for k in range(30)]}]).grid_size() == 30


def test_structure_rules():
    rejects({"IntegerParameterRanges": [cont("a", "1", "5", "Exponential")]},
            "Value 'Exponential' at 'parameterRanges.integerParameterRanges.1.scalingType'", "enum")
    rejects({"IntegerParameterRanges": [{"MinValue": "1", "MaxValue": "2"}]}, "integerParameterRanges.1.name")
    rejects({"IntegerParameterRanges": [{"Name": "a", "MinValue": "1", "MaxValue": "2", "Step": "1"}]}, "step")
    rejects({"IntegerParameterRanges": "a"}, "be a list")
    rejects({"FloatParameterRanges": []}, "floatParameterRanges")
    rejects({"AutoParameters": [{"Name": "a", "ValueHint": "1"}]}, "autoParameters")
    rejects(["not", "a", "structure"], "be a structure")
    rejects({"IntegerParameterRanges": [cont("x" * 257, "1", "2")]}, "length less than or equal to 256")


def test_every_broken_rule_is_reported_at_once():
    message = rejects({"IntegerParameterRanges": [cont("a", "5", "1")],
                       "ContinuousParameterRanges": [cont("b", "0", "1", "Logarithmic")]},
                      "2 validation errors detected")
    assert "integerParameterRanges.1.minValue" in message
    assert "continuousParameterRanges.1.minValue" in message


def test_path_prefix_can_name_a_training_job_definition():
    with pytest.raises(ValidationException, match="trainingJobDefinitions.1.hyperParameterRanges.integer"):
        SearchSpace.from_parameter_ranges({"IntegerParameterRanges": [cont("a", "5", "1")]},
                                          path="trainingJobDefinitions.1.hyperParameterRanges")


# -- encode / decode -------------------------------------------------------------------------------------
def test_encode_decode_round_trip():
    space = SearchSpace.from_parameter_ranges(MIXED)
    rng = np.random.default_rng(0)
    for assignment in space.sample(rng, 300):
        vector = space.encode(assignment)
        assert vector.shape == (space.dim,)
        assert np.all(vector >= -1e-12) and np.all(vector <= 1 + 1e-12)
        back = space.decode(vector)
        for name in ("depth", "trees", "optimizer", "act"):
            assert back[name] == assignment[name]
        for name in ("lr", "momentum", "dropout"):
            assert math.isclose(float(back[name]), float(assignment[name]), rel_tol=1e-9, abs_tol=1e-12)


def test_decode_encode_decode_is_stable():
    space = SearchSpace.from_parameter_ranges(MIXED)
    rng = np.random.default_rng(1)
    for u in rng.uniform(size=(200, space.dim)):
        first = space.decode(u)
        again = space.decode(space.encode(first))
        for name in first:  # integers and categories exactly; continuous values to the last bit or so
            if space[name].kind == "Continuous":
                assert float(again[name]) == pytest.approx(float(first[name]), rel=1e-12, abs=1e-15)
            else:
                assert again[name] == first[name]
        assert np.allclose(space.snap(u)[0], space.encode(first), atol=1e-9)


def test_decode_formats_and_clips():
    space = SearchSpace.from_parameter_ranges(MIXED)
    low = space.decode(np.full(space.dim, -0.5))
    high = space.decode(np.full(space.dim, 1.5))
    assert (low["depth"], high["depth"]) == ("1", "12")
    assert (low["trees"], high["trees"]) == ("10", "1000")
    assert float(low["lr"]) == pytest.approx(1e-5) and float(high["lr"]) == pytest.approx(0.1)
    assert float(low["lr"]) >= 1e-5 and float(high["lr"]) <= 0.1
    assert float(low["momentum"]) == 0.0 and float(high["momentum"]) == pytest.approx(0.999)
    assert float(high["momentum"]) <= 0.999
    assert low["dropout"] == "0.0" and high["dropout"] == "0.5"
    middle = space.decode(np.full(space.dim, 0.5))
    assert middle["depth"] in ("6", "7")  # rounded to the nearest integer, written as a plain int
    assert middle["trees"] == "100"  # log scale: the geometric middle of 10..1000
    assert float(middle["lr"]) == pytest.approx(10 ** -3)
    assert middle["lr"] == repr(float(middle["lr"]))
    with pytest.raises(ValueError):
        space.decode(np.zeros(3))


def test_categorical_decode_takes_the_largest_one_hot_entry():
    space = parse(CategoricalParameterRanges=[{"Name": "c", "Values": ["a", "b", "c"]}])
    assert space.decode([0.1, 0.7, 0.2]) == {"c": "b"}
    assert list(space.encode({"c": "c"})) == [0.0, 0.0, 1.0]
    with pytest.raises(KeyError):
        space.encode({"c": "zzz"})
    with pytest.raises(KeyError):
        space.encode({})


def test_encode_maps_out_of_range_values_outside_the_cube():
    space = parse(ContinuousParameterRanges=[cont("x", "0", "10", "Linear"), cont("y", "1", "100", "Logarithmic")])
    v = space.encode({"x": "15", "y": "0.1"})
    assert v[0] == pytest.approx(1.5) and v[1] == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        space.encode({"x": "abc", "y": "1"})


def test_reverse_log_is_log_uniform_in_one_minus_x():
    r = ParameterRange("m", "Continuous", 0.0, 0.999, scaling="ReverseLogarithmic")
    assert float(r.to_unit(0.0)) == pytest.approx(0.0)
    assert float(r.to_unit(0.999)) == pytest.approx(1.0)
    assert float(r.to_unit(0.99)) == pytest.approx(2 / 3)  # 1 - x: 1 -> 0.01 -> 0.001, two decades of three
    assert float(r.from_unit(1 / 3)) == pytest.approx(0.9)


def test_key_normalises_numbers():
    space = parse(IntegerParameterRanges=[cont("n", "1", "10")], ContinuousParameterRanges=[cont("x", "0", "1")])
    assert space.key({"n": "3", "x": "0.5"}) == space.key({"n": "3.0", "x": "5e-1"})
    assert space.key({"n": "3", "x": "0.5"}) != space.key({"n": "4", "x": "0.5"})


# -- sampling ------------------------------------------------------------------------------------------------
def test_log_scaled_draws_are_uniform_in_log_space():
    space = parse(ContinuousParameterRanges=[cont("lr", "1e-6", "1", "Logarithmic")])
    draws = np.array([float(a["lr"]) for a in space.sample(np.random.default_rng(3), 4000)])
    assert draws.min() >= 1e-6 and draws.max() <= 1
    logs = np.log10(draws)
    assert stats.kstest((logs + 6) / 6, "uniform").pvalue > 0.001
    counts = np.histogram(logs, bins=6, range=(-6, 0))[0]
    assert counts.min() > 0.8 * 4000 / 6  # every decade gets its share, about 667
    assert counts.max() < 1.2 * 4000 / 6


def test_linear_draws_are_uniform_and_auto_log_is_applied():
    space = parse(ContinuousParameterRanges=[cont("x", "-2", "3"), cont("lr", "1e-4", "1")])
    sample = space.sample(np.random.default_rng(4), 3000)
    x = np.array([float(a["x"]) for a in sample])
    assert stats.kstest((x + 2) / 5, "uniform").pvalue > 0.001
    lr = np.log10([float(a["lr"]) for a in sample])
    assert stats.kstest((lr + 4) / 4, "uniform").pvalue > 0.001  # Auto chose log: 4 decades


def test_reverse_log_draws_are_dense_near_one():
    space = parse(ContinuousParameterRanges=[cont("beta", "0", "0.999", "ReverseLogarithmic")])
    draws = np.array([float(a["beta"]) for a in space.sample(np.random.default_rng(5), 3000)])
    assert draws.min() >= 0 and draws.max() <= 0.999
    # 1 - x is log-uniform on [0.001, 1]: P(x > 0.9) = 2/3, P(x > 0.99) = 1/3, while linear would give 10%, 1%.
    assert np.mean(draws > 0.9) == pytest.approx(2 / 3, abs=0.04)
    assert np.mean(draws > 0.99) == pytest.approx(1 / 3, abs=0.04)
    assert stats.kstest(np.log10(1 - draws) / -3, "uniform").pvalue > 0.001


def test_integer_draws_are_integers_covering_the_range_evenly():
    space = parse(IntegerParameterRanges=[cont("k", "1", "6", "Linear")])
    draws = [a["k"] for a in space.sample(np.random.default_rng(6), 6000)]
    assert set(draws) == {"1", "2", "3", "4", "5", "6"}  # plain integer text
    counts = np.array([draws.count(str(k)) for k in range(1, 7)])
    assert stats.chisquare(counts).pvalue > 0.001  # the ends are as likely as the middle


def test_integer_log_draws_are_integers_spread_over_decades():
    space = parse(IntegerParameterRanges=[cont("n", "1", "10000", "Logarithmic")])
    draws = np.array([int(a["n"]) for a in space.sample(np.random.default_rng(7), 4000)])
    assert draws.min() >= 1 and draws.max() <= 10000
    counts = np.histogram(np.log10(draws), bins=4, range=(0, 4))[0]
    assert counts.min() > 0.15 * 4000  # linear draws would put 90% in the last decade


def test_categorical_draws_are_uniform():
    space = parse(CategoricalParameterRanges=[{"Name": "c", "Values": ["a", "b", "c", "d"]}])
    draws = [a["c"] for a in space.sample(np.random.default_rng(8), 4000)]
    counts = np.array([draws.count(v) for v in "abcd"])
    assert stats.chisquare(counts).pvalue > 0.001


def test_sampling_is_seeded():
    space = SearchSpace.from_parameter_ranges(MIXED)
    assert space.sample(np.random.default_rng(9), 5) == space.sample(np.random.default_rng(9), 5)
    assert space.sample(np.random.default_rng(9), 5) != space.sample(np.random.default_rng(10), 5)


# -- grids and finite spaces -----------------------------------------------------------------------------------
def test_grid_enumerates_every_combination_in_a_stable_order():
    space = parse(CategoricalParameterRanges=[{"Name": "a", "Values": ["1", "2"]},
                                              {"Name": "b", "Values": ["x", "y", "z"]}])
    assert space.categorical_only
    assert space.grid_size() == 6
    grid = list(space.grid())
    assert grid[:3] == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"}]
    assert len({tuple(g.values()) for g in grid}) == 6
    assert grid == list(space.grid())


def test_grid_needs_categorical_ranges_only():
    space = SearchSpace.from_parameter_ranges(MIXED)
    with pytest.raises(ValueError):
        space.grid_size()
    with pytest.raises(ValueError):
        list(space.grid())
    assert SearchSpace([]).grid_size() == 0


def test_finite_size_and_enumerate():
    space = parse(IntegerParameterRanges=[cont("n", "2", "4")],
                  CategoricalParameterRanges=[{"Name": "c", "Values": ["a", "b"]}])
    assert space.finite_size() == 6
    assignments = list(space.enumerate())
    assert len(assignments) == 6 and {"n": "2", "c": "a"} in assignments
    assert SearchSpace.from_parameter_ranges(MIXED).finite_size() is None
    assert SearchSpace([]).finite_size() == 1
