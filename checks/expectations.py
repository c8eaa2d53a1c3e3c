"""Custom Great Expectations (GX 1.24) for what the built-ins cannot say.

Every condition here is computed by the same Polars code the row quarantine
uses (`lowincome.identity`, the typed columns of `lowincome.validation`), so
the suites and the quarantine cannot disagree about what a valid ID, a
recognised value or a consistent claim is. GX hands pandas objects to the
metric functions; they are converted to Polars (cheap for Arrow-backed
columns) and the boolean answer is handed back on the same index, because GX
may pass a filtered frame whose index is not contiguous.

Importing this module registers the expectations and their metrics with GX
(registration happens at class definition), which is why `checks.suites`
imports it before building any suite.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Tuple, Union

import pandas as pd
import polars as pl
from great_expectations.compatibility import pydantic
from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer

from lowincome.identity import normalize_id_struct

from .names import column_label

_MULTI_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


def _frame(df: pd.DataFrame) -> pl.DataFrame:
    # nan_to_null: numeric columns with nulls arrive from pandas as float NaN.
    return pl.from_pandas(df.reset_index(drop=True), nan_to_null=True)


def _answer(mask: pl.Series, index: pd.Index) -> pd.Series:
    return pd.Series(mask.fill_null(False).to_numpy(), index=index, dtype=bool)


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# ---- how the Data Docs say each custom expectation in words -------------------------------------
# Without a prescriptive renderer GX prints a custom expectation as its raw argument dict
# (`**{'batch_id': ..., 'column_list': [...]}`). Each class below gets one sentence, Chinese first,
# naming columns by the header the department delivered with the pipeline's name beside it.

def _sentence(template: str, params: dict, runtime_configuration: dict | None) -> list[RenderedStringTemplateContent]:
    styling = (runtime_configuration or {}).get("styling")
    return [RenderedStringTemplateContent(
        content_block_type="string_template",
        string_template={"template": template, "params": params, "styling": styling},
    )]


def _kwargs(configuration, result) -> dict:
    config = configuration if configuration is not None else getattr(result, "expectation_config", None)
    return dict(getattr(config, "kwargs", None) or {})


def _date_text(value) -> str:
    return str(value)[:10] if value else "the extraction date 提取日期"


# ---- GB 11643 ID numbers ------------------------------------------------------------------


class ColumnValuesValidGb11643Id(ColumnMapMetricProvider):
    """True where the delivered text is an acceptable ID (after normalisation), by `normalize_id_struct`."""

    condition_metric_name = "column_values.valid_gb11643_id"
    condition_value_keys = ("latest_birth",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, latest_birth=None, **kwargs):
        s = pl.from_pandas(column.reset_index(drop=True)).cast(pl.String)
        problem = (
            pl.DataFrame({"v": s})
            .select(normalize_id_struct(pl.col("v"), today=_as_date(latest_birth)).struct.field("problem").is_null())
            .to_series()
        )
        return _answer(problem, column.index)


class ExpectColumnValuesToBeValidGb11643Id(ColumnMapExpectation):
    """Values are GB 11643 citizen ID numbers: 18 characters (or a legacy 15-digit number),
    a real birth date no later than `latest_birth`, and a matching ISO 7064 MOD 11-2 check
    character. Full-width digits, surrounding spaces and a lower-case x are accepted, as in the
    quarantine. Nulls are not checked (blank values are `expect_column_values_to_not_be_null`'s job).
    """

    latest_birth: Union[str, SuiteParameterDict, None] = pydantic.Field(
        default=None, description="Latest acceptable birth date (ISO); usually the file's extraction date."
    )
    map_metric = "column_values.valid_gb11643_id"
    success_keys = ("mostly", "latest_birth")
    args_keys = ("column", "latest_birth")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = _kwargs(configuration, result)
        return _sentence(
            "$column 须为有效的公民身份号码 must be a valid GB 11643 ID number (18 characters, or a legacy "
            "15-digit number; a real birth date no later than $latest_birth; a correct check character).",
            {"column": column_label(kw.get("column", "")), "latest_birth": _date_text(kw.get("latest_birth"))},
            runtime_configuration,
        )


# ---- delivered text that did not become a typed value ----------------------------------------


class MulticolumnValuesRecognised(MulticolumnMapMetricProvider):
    """column_list = [raw, typed]: unexpected where text was delivered but no typed value came of it."""

    condition_metric_name = "multicolumn_values.recognised"
    condition_domain_keys = _MULTI_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs):
        f = _frame(column_list)
        raw, typed = f.columns[:2]
        ok = f.select(pl.col(raw).is_null() | pl.col(typed).is_not_null()).to_series()
        return _answer(ok, column_list.index)


class ExpectColumnValuesToBeRecognised(MulticolumnMapExpectation):
    """column_list = [raw text column, typed column]: every delivered (non-blank) text was
    understood: a date, month, amount, whole number, code or known label. The typed column is
    what `lowincome.validation.validate_rows` made of the text, so this is the quarantine's own
    parse verdict recorded in GX.
    """

    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"
    map_metric = "multicolumn_values.recognised"
    success_keys = ("mostly",)
    args_keys = ("column_list",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        columns = list(_kwargs(configuration, result).get("column_list") or [])
        return _sentence(
            "$column 的每个非空值须可识别 every value delivered in $column must be understood (a date, month, "
            "amount, whole number, code or known label).",
            {"column": column_label(columns[0] if columns else "")},
            runtime_configuration,
        )


# ---- medical claims: parts sum to the total -----------------------------------------------------


class MulticolumnPartsSumToTotal(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.parts_sum_to_total"
    condition_domain_keys = _MULTI_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs):
        f = _frame(column_list)
        cents = [(pl.col(c).cast(pl.Float64) * 100).round(0).cast(pl.Int64) for c in f.columns]
        ok = f.select(cents[0] == pl.sum_horizontal(cents[1:])).to_series()
        return _answer(ok, column_list.index)


class ExpectColumnPartsToSumToTotal(MulticolumnMapExpectation):
    """column_list = [total, part, part, ...]: the parts add up to the total to the cent.
    Rows where any amount is missing are not compared (they fail their own checks).
    """

    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"
    map_metric = "multicolumn_values.parts_sum_to_total"
    success_keys = ("mostly",)
    args_keys = ("column_list",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        columns = list(_kwargs(configuration, result).get("column_list") or [])
        return _sentence(
            "$total 须等于各项之和 must equal the sum of $parts, to the cent (rows with a missing amount are not compared).",
            {"total": column_label(columns[0] if columns else ""),
             "parts": " + ".join(column_label(c) for c in columns[1:])},
            runtime_configuration,
        )


# ---- disability certificates: number = holder ID + category digit + level digit -------------------


class MulticolumnCertificateMatchesHolder(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.certificate_matches_holder"
    condition_domain_keys = _MULTI_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs):
        f = _frame(column_list)
        cert, holder, category, level = f.columns[:4]
        expected = (
            pl.col(holder).cast(pl.String)
            + pl.col(category).cast(pl.Int64).cast(pl.String)
            + pl.col(level).cast(pl.Int64).cast(pl.String)
        )
        ok = f.select(pl.col(cert).cast(pl.String) == expected).to_series()
        return _answer(ok, column_list.index)


class ExpectCertificateNumberToMatchHolder(MulticolumnMapExpectation):
    """column_list = [certificate number, holder ID (normalised), category code, level code]:
    the 20-character certificate number is the holder's ID followed by the category digit and
    the level digit. Rows with any part missing are not compared.
    """

    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"
    map_metric = "multicolumn_values.certificate_matches_holder"
    success_keys = ("mostly",)
    args_keys = ("column_list",)

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        columns = list(_kwargs(configuration, result).get("column_list") or []) + ["", "", "", ""]
        return _sentence(
            "$certificate 须为持证人身份证号加类别、等级数字 must be the holder's ID number ($holder) followed by the "
            "category digit ($category) and the level digit ($level).",
            {"certificate": column_label(columns[0]), "holder": column_label(columns[1]),
             "category": column_label(columns[2]), "level": column_label(columns[3])},
            runtime_configuration,
        )


# ---- a column filled exactly when (or only when) another column has a value -----------------------


class MulticolumnPresentWhen(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.present_when"
    condition_domain_keys = _MULTI_DOMAIN
    condition_value_keys = ("value", "required")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, value=None, required=True, **kwargs):
        f = _frame(column_list)
        cond, raw, typed = f.columns[:3]
        c = pl.col(cond).cast(pl.String)
        present_elsewhere = c.is_not_null() & (c != value) & pl.col(typed).is_not_null()
        missing = (c == value) & pl.col(raw).is_null() if required else pl.lit(False)
        ok = f.select(~(present_elsewhere | missing.fill_null(False))).to_series()
        return _answer(ok, column_list.index)


class ExpectColumnValuesToBePresentExactlyWhen(MulticolumnMapExpectation):
    """column_list = [condition column, raw text column, typed column].

    Where the condition column holds another (known) value, the typed column must be empty;
    with `required`, where it holds `value` the raw text must not be blank. E.g. 停保日期 is
    present exactly when 保障状态 is 停保; 注销日期 only when 证件状态 is 注销.
    """

    value: Union[str, SuiteParameterDict] = pydantic.Field(description="Condition value")
    required: Union[bool, SuiteParameterDict] = pydantic.Field(default=True, description="Must be present then")
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "never"
    map_metric = "multicolumn_values.present_when"
    success_keys = ("mostly", "value", "required")
    args_keys = ("column_list", "value", "required")

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        kw = _kwargs(configuration, result)
        columns = list(kw.get("column_list") or []) + ["", "", ""]
        template = ("$field 仅当 $condition 为 $value 时填写 is filled only when $condition is $value"
                    + ("，且此时必须填写 and must be filled then." if kw.get("required", True) else "."))
        return _sentence(
            template,
            {"field": column_label(columns[2] or columns[1]), "condition": column_label(columns[0]),
             "value": str(kw.get("value", ""))},
            runtime_configuration,
        )


CUSTOM_EXPECTATIONS: Tuple[type, ...] = (
    ExpectColumnValuesToBeValidGb11643Id,
    ExpectColumnValuesToBeRecognised,
    ExpectColumnPartsToSumToTotal,
    ExpectCertificateNumberToMatchHolder,
    ExpectColumnValuesToBePresentExactlyWhen,
)
