"""The JSONPath subset of InputFilter and OutputFilter: parsing, selection, and the errors users see."""

from __future__ import annotations

from typing import Any

import pytest

from forgeml.transform.jsonpath import JsonPathError, parse

RECORD = {"id": 7, "features": [0.5, 1.5, 2.5, 3.5], "meta": {"source": "ufo", "tags": ["a", "b"]},
          "odd key": True, "SageMakerOutput": {"score": 0.25}}
ROW = ["id-1", "0.1", "0.2", "0.3", "label"]


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("$", ROW, ROW),
        ("$[1:]", ROW, ["0.1", "0.2", "0.3", "label"]),
        ("$[:2]", ROW, ["id-1", "0.1"]),
        ("$[1:3]", ROW, ["0.1", "0.2"]),
        ("$[0]", ROW, "id-1"),
        ("$[-1]", ROW, "label"),
        ("$[0,-1]", ROW, ["id-1", "label"]),
        ("$[0,3:]", ROW, ["id-1", "0.3", "label"]),
        ("$[ 0 , 2 ]", ROW, ["id-1", "0.2"]),
        ("$[::2]", ROW, ["id-1", "0.2", "label"]),
        ("$[10:]", ROW, []),
        ("$[*]", ROW, ROW),
        ("$.features", RECORD, [0.5, 1.5, 2.5, 3.5]),
        ("$['features']", RECORD, [0.5, 1.5, 2.5, 3.5]),
        ('$["features"][1:3]', RECORD, [1.5, 2.5]),
        ("$.meta.source", RECORD, "ufo"),
        ("$.meta.tags[-1]", RECORD, "b"),
        ("$['odd key']", RECORD, True),
        ("$['id','SageMakerOutput']", RECORD, {"id": 7, "SageMakerOutput": {"score": 0.25}}),
        ("$.SageMakerOutput.score", RECORD, 0.25),
        ("$.meta.*", {"meta": {"a": 1, "b": 2}}, [1, 2]),
        ("$[*].score", [{"score": 1}, {"score": 2}], [1, 2]),
        ("$[0:2].x[0]", [{"x": [1, 2]}, {"x": [3]}, {"x": [5]}], [1, 3]),
        ("$['it\\'s']", {"it's": 1}, 1),
    ],
)
def test_selection(expression: str, value: Any, expected: Any) -> None:
    assert parse(expression).apply(value) == expected


def test_root_is_recognised_so_records_can_skip_parsing() -> None:
    assert parse("$").is_root
    assert parse(" $ ").is_root
    assert not parse("$[1:]").is_root


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "an expression starts with '$' at character 0 of ''"),
        ("features", "an expression starts with '$' at character 0 of 'features'"),
        ("$..features", "recursive descent '..' is not supported at character 2 of '$..features'"),
        ("$[1", "expected ']' at character 3 of '$[1'"),
        ("$[a]", "expected an index, a slice, a quoted name or '*' at character 2 of '$[a]'"),
        ("$['id'", "expected ']' at character 6 of '$['id''"),
        ("$['id", "unterminated quoted name at character 5 of '$['id'"),
        ("$[::0]", "a slice step cannot be 0 at character 5 of '$[::0]'"),
        ("$.", "expected a member name after '.' at character 2 of '$.'"),
        ("$ x", "unexpected 'x' at character 2 of '$ x'"),
        ("$[?(@.x)]", "expected an index, a slice, a quoted name or '*' at character 2 of '$[?(@.x)]'"),
    ],
)
def test_expressions_outside_the_subset_are_refused(expression: str, message: str) -> None:
    with pytest.raises(JsonPathError) as caught:
        parse(expression)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expression", "value", "message"),
    [
        ("$[5]", ROW, "'$[5]': index 5 is outside the array's 5 elements"),
        ("$[0,-9]", ROW, "'$[0,-9]': index -9 is outside the array's 5 elements"),
        ("$.features", ROW, "'$.features': member 'features' needs an object, found an array"),
        ("$.missing", RECORD, "'$.missing': the record has no member 'missing'"),
        ("$[0]", RECORD, "'$[0]': an index needs an array, found an object"),
        ("$.id[0]", RECORD, "'$.id[0]': an index needs an array, found a number"),
        ("$.meta.source.*", RECORD, "'$.meta.source.*': '*' needs an array or an object, found a string"),
    ],
)
def test_selections_that_do_not_fit_the_record_fail(expression: str, value: Any, message: str) -> None:
    with pytest.raises(JsonPathError) as caught:
        parse(expression).apply(value)
    assert str(caught.value) == message
