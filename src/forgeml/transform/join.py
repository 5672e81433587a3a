"""DataProcessing: InputFilter before the model, JoinSource and OutputFilter after it, per record.

A CSV record is seen as a JSON array of its fields (strings, parsed with the csv module); a JSON or
JSON Lines record is its JSON value. ``JoinSource=Input`` joins the *original* input record with the
record's output: for CSV the output row's fields are appended to the input row's; for JSON the
output goes under ``SageMakerOutput`` in the input object (an input that is not an object becomes
``{"SageMakerInput": ..., "SageMakerOutput": ...}``). ``OutputFilter`` then selects from the joined
record (or, without a join, from the output itself), and the result is written in the same format.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from forgeml.transform import jsonpath
from forgeml.transform.jsonpath import JsonPath, JsonPathError
from forgeml.transform.records import CSV, RecordError, mime_of, record_format

OUTPUT_KEY = "SageMakerOutput"
INPUT_KEY = "SageMakerInput"
_CSV_SPECIAL = (",", '"', "\n", "\r")


class JoinError(ValueError):
    """A record and its output cannot be joined (reserved key, an output that is not CSV ...)."""


# -- CSV records as arrays -------------------------------------------------------------------------


def parse_csv_row(text: str) -> list[str]:
    """One CSV record's fields; more than one row is an error (a record is one row)."""
    if '"' not in text and "\n" not in text:
        return text.split(",")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) != 1:
        raise ValueError(f"a CSV record must be one row, this one has {len(rows)} (use SplitType Line for "
                         "objects with several rows)")
    return rows[0]


def csv_field(value: Any) -> str:
    """A JSON value as one CSV field: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def format_csv_row(value: Any) -> str:
    """An array (or one scalar) as a CSV row, quoting only the fields that need it."""
    fields = [csv_field(v) for v in value] if isinstance(value, list) else [csv_field(value)]
    if not any(special in field for field in fields for special in _CSV_SPECIAL):
        return ",".join(fields)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(fields)  # line breaks in a field get it quoted
    return out.getvalue()[:-2]


def csv_value(fields: list[str]) -> Any:
    """A CSV output row as a JSON value: one field alone, several as an array; numbers become numbers."""
    values = [_number_or_text(field) for field in fields]
    return values[0] if len(values) == 1 else values


def _number_or_text(field: str) -> Any:
    try:
        number = float(field)
    except ValueError:
        return field
    if number.is_integer() and field.strip().lstrip("+-").isdigit():
        return int(number)
    return number


# -- joins -----------------------------------------------------------------------------------------


def join_csv(input_fields: list[str], output_fields: list[str]) -> list[str]:
    """The input row followed by the output row's columns."""
    return [*input_fields, *output_fields]


def join_json(input_value: Any, output_value: Any) -> dict[str, Any]:
    """The output under ``SageMakerOutput`` in the input object (or beside a non-object input)."""
    if isinstance(input_value, dict):
        if OUTPUT_KEY in input_value:
            raise JoinError(f"the input record already has a '{OUTPUT_KEY}' member, which JoinSource Input reserves "
                            "for the model's output")
        return {**input_value, OUTPUT_KEY: output_value}
    return {INPUT_KEY: input_value, OUTPUT_KEY: output_value}


# -- the per-record pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class DataProcessor:
    """A job's DataProcessing: what each record becomes before the model and after it."""

    input_filter: JsonPath
    output_filter: JsonPath
    join: bool
    input_format: str | None  # "csv" | "json" | None (filters and joins need one of the first two)

    @classmethod
    def from_request(cls, processing: dict[str, Any], content_type: str | None) -> DataProcessor:
        return cls(jsonpath.parse(processing.get("InputFilter") or "$"),
                   jsonpath.parse(processing.get("OutputFilter") or "$"),
                   processing.get("JoinSource") == "Input", record_format(content_type))

    @property
    def passes_input_through(self) -> bool:
        """Records go to the model byte for byte, unparsed."""
        return self.input_filter.is_root and not self.join

    @property
    def needs_record_outputs(self) -> bool:
        """Each record's own output is needed (to join it or filter it)."""
        return self.join or not self.output_filter.is_root

    def prepare(self, record: bytes, uri: str, number: int) -> tuple[bytes, Any]:
        """What the model receives for a record, and the parsed input kept for the join (or None)."""
        if self.passes_input_through:
            return record, None
        value = self._parse(record, self.input_format, uri, number, "input")
        if self.input_filter.is_root:
            return record, value
        try:
            selected = self.input_filter.apply(value)
        except JsonPathError as exc:
            raise RecordError(uri, number, f"InputFilter {exc}", "Cannot filter") from None
        payload = format_csv_row(selected) if self.input_format == "csv" else json.dumps(selected)
        return payload.encode(), value if self.join else None

    def finish(self, source: Any, output: bytes, output_type: str | None, uri: str, number: int) -> bytes:
        """One record's result as written to the .out object (without a line break)."""
        if self.join:
            value, form = self._joined(source, output, output_type, uri, number), self.input_format
        else:
            form = record_format(output_type)
            if form is None:
                raise RecordError(uri, number, f"OutputFilter needs CSV or JSON output, and the model answered "
                                               f"'{mime_of(output_type) or 'no content type'}'", "Cannot filter")
            value = self._parse(output, form, uri, number, "output")
        if not self.output_filter.is_root:
            try:
                value = self.output_filter.apply(value)
            except JsonPathError as exc:
                raise RecordError(uri, number, f"OutputFilter {exc}", "Cannot filter") from None
        text = format_csv_row(value) if form == "csv" else json.dumps(value)
        return text.encode()

    def _joined(self, source: Any, output: bytes, output_type: str | None, uri: str, number: int) -> Any:
        if self.input_format == "csv":
            if mime_of(output_type) != CSV:
                raise RecordError(uri, number, "JoinSource Input joins a CSV input row with CSV output columns, and "
                                               f"the model answered '{mime_of(output_type) or 'no content type'}' "
                                               "(set TransformOutput.Accept to text/csv)", "Cannot join")
            return join_csv(source, self._parse(output, "csv", uri, number, "output"))
        answer = self._output_value(output, output_type, uri, number)
        try:
            return join_json(source, answer)
        except JoinError as exc:
            raise RecordError(uri, number, str(exc), "Cannot join") from None

    def _output_value(self, output: bytes, output_type: str | None, uri: str, number: int) -> Any:
        form = record_format(output_type)
        if form is not None:
            parsed = self._parse(output, form, uri, number, "output")
            return csv_value(parsed) if form == "csv" else parsed
        try:
            return output.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError(uri, number, f"the model's '{mime_of(output_type)}' output is not text, so it cannot "
                                           "be joined into a JSON record", "Cannot join") from None

    @staticmethod
    def _parse(data: bytes, form: str | None, uri: str, number: int, side: str) -> Any:
        try:
            text = data.decode("utf-8")
            if form == "csv":
                return parse_csv_row(text)
            return json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            kind = "CSV" if form == "csv" else "JSON"
            raise RecordError(uri, number, f"the {side} is not valid {kind}: {exc}", "Cannot parse") from None
