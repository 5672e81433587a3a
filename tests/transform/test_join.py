"""DataProcessing per record: InputFilter, JoinSource=Input and OutputFilter as pure functions."""

from __future__ import annotations

import json

import pytest

from forgeml.transform.join import (
    DataProcessor,
    JoinError,
    format_csv_row,
    join_csv,
    join_json,
    parse_csv_row,
)
from forgeml.transform.records import RecordError

URI = "s3://bucket/in/data.csv"


def processor(content_type: str, **processing: str) -> DataProcessor:
    return DataProcessor.from_request(processing, content_type)


def test_csv_rows_round_trip_with_quoting() -> None:
    assert parse_csv_row("a,b,c") == ["a", "b", "c"]
    assert parse_csv_row('1,"x, y","say ""hi"""') == ["1", "x, y", 'say "hi"']
    assert parse_csv_row('1,"two\nlines"') == ["1", "two\nlines"]
    assert format_csv_row(["1", "x, y", 'say "hi"']) == '1,"x, y","say ""hi"""'
    assert format_csv_row(["1", "two\nlines"]) == '1,"two\nlines"'
    assert format_csv_row([1, 0.5, True, None, "s", [1, 2]]) == '1,0.5,true,,s,"[1, 2]"'
    assert format_csv_row("alone") == "alone"
    with pytest.raises(ValueError, match="a CSV record must be one row, this one has 2"):
        parse_csv_row('"a"\n"b"')


def test_joins() -> None:
    assert join_csv(["id-1", "0.5"], ["0.9", "1"]) == ["id-1", "0.5", "0.9", "1"]
    assert join_json({"id": 1}, {"score": 0.9}) == {"id": 1, "SageMakerOutput": {"score": 0.9}}
    assert join_json([1, 2], 0.9) == {"SageMakerInput": [1, 2], "SageMakerOutput": 0.9}
    with pytest.raises(JoinError, match="already has a 'SageMakerOutput' member"):
        join_json({"SageMakerOutput": 1}, 2)


def test_csv_input_filter_then_join_then_output_filter() -> None:
    steps = processor("text/csv", InputFilter="$[1:]", JoinSource="Input", OutputFilter="$[0,-1]")
    payload, kept = steps.prepare(b"id-7,0.1,0.2,0.3", URI, 1)
    assert payload == b"0.1,0.2,0.3"
    assert kept == ["id-7", "0.1", "0.2", "0.3"]
    assert steps.finish(kept, b"0.875,1", "text/csv; charset=utf-8", URI, 1) == b"id-7,1"
    whole = processor("text/csv", JoinSource="Input")
    assert whole.finish(kept, b"0.875,1", "text/csv", URI, 1) == b"id-7,0.1,0.2,0.3,0.875,1"


def test_json_lines_filter_join_and_output_filter() -> None:
    steps = processor("application/jsonlines", InputFilter="$.features", JoinSource="Input",
                      OutputFilter="$['id','SageMakerOutput']")
    record = b'{"id": 3, "features": [1.0, 2.0], "note": "x"}'
    payload, kept = steps.prepare(record, URI, 4)
    assert json.loads(payload) == [1.0, 2.0]
    answer = b'{"predictions": [{"score": 0.5, "predicted_label": 1}]}'
    result = json.loads(steps.finish(kept, answer, "application/json", URI, 4))
    assert result == {"id": 3, "SageMakerOutput": {"predictions": [{"score": 0.5, "predicted_label": 1}]}}
    # a CSV answer joins into JSON as a number (one column) or an array (several)
    joined = processor("application/jsonlines", JoinSource="Input")
    assert json.loads(joined.finish({"id": 1}, b"0.25", "text/csv", URI, 1)) == {"id": 1, "SageMakerOutput": 0.25}
    assert json.loads(joined.finish([1], b"0.25,1,x", "text/csv", URI, 1)) == {
        "SageMakerInput": [1], "SageMakerOutput": [0.25, 1, "x"]}
    assert json.loads(joined.finish({"id": 1}, b"plain text", "text/plain", URI, 1)) == {
        "id": 1, "SageMakerOutput": "plain text"}


def test_output_filter_without_join_reads_the_models_output() -> None:
    steps = processor("text/csv", OutputFilter="$[0]")
    assert steps.needs_record_outputs and steps.passes_input_through
    assert steps.prepare(b"1,2,3", URI, 1) == (b"1,2,3", None)
    assert steps.finish(None, b"0.5,1", "text/csv", URI, 1) == b"0.5"
    json_steps = processor("text/csv", OutputFilter="$.predictions[0].score")
    assert json_steps.finish(None, b'{"predictions": [{"score": 0.5}]}', "application/json", URI, 1) == b"0.5"


def test_plain_processing_passes_records_through_untouched() -> None:
    steps = processor("application/x-recordio-protobuf")
    assert steps.passes_input_through and not steps.needs_record_outputs
    assert steps.prepare(b"\x0a\x23binary", URI, 1) == (b"\x0a\x23binary", None)


@pytest.mark.parametrize(
    ("content_type", "processing", "record", "answer", "message"),
    [
        ("application/jsonlines", {"InputFilter": "$.features"}, b'{"id": 1', None,
         "Cannot parse s3://bucket/in/data.csv, record 5: the input is not valid JSON: "),
        ("application/jsonlines", {"InputFilter": "$.features"}, b'{"id": 1}', None,
         "Cannot filter s3://bucket/in/data.csv, record 5: InputFilter '$.features': the record has no member "
         "'features'"),
        ("text/csv", {"InputFilter": "$[9]"}, b"1,2", None,
         "Cannot filter s3://bucket/in/data.csv, record 5: InputFilter '$[9]': index 9 is outside the array's 2 "
         "elements"),
        ("application/jsonlines", {"JoinSource": "Input"}, b'{"SageMakerOutput": 1}', b"0.5",
         "Cannot join s3://bucket/in/data.csv, record 5: the input record already has a 'SageMakerOutput' member"),
        ("text/csv", {"JoinSource": "Input"}, b"1,2", b'{"predictions": []}',
         "Cannot join s3://bucket/in/data.csv, record 5: JoinSource Input joins a CSV input row with CSV output "
         "columns, and the model answered 'application/json' (set TransformOutput.Accept to text/csv)"),
        ("text/csv", {"OutputFilter": "$[3]"}, b"1,2", b"0.5,1",
         "Cannot filter s3://bucket/in/data.csv, record 5: OutputFilter '$[3]': index 3 is outside the array's 2 "
         "elements"),
    ],
)
def test_record_errors_name_the_object_and_the_record(content_type: str, processing: dict[str, str], record: bytes,
                                                      answer: bytes | None, message: str) -> None:
    steps = processor(content_type, **processing)
    answer_type = "application/json" if answer and answer.startswith(b"{") else "text/csv"
    with pytest.raises(RecordError) as caught:
        payload, kept = steps.prepare(record, URI, 5)
        assert answer is not None
        steps.finish(kept, answer, answer_type, URI, 5)
    assert caught.value.failure_reason().startswith(f"ClientError: {message}")
    assert caught.value.record == 5
