"""GX Data Docs renderers that tell a file with warnings from a file that failed.

GX marks a validation "Failed" with a red cross as soon as any expectation
fails. Here nearly every failing expectation is a warning: its rows were
quarantined and the rest of the file was used. An auditor who sees 58 of 61
files "Failed" cannot find the one that was held back. These subclasses read
the status `checks.run` recorded in each result (`validation_status` in the
batch spec: passed / warnings only / failed, from the expectations' severity)
and show it in words and colour, Chinese first, on the index and on each
validation page. They are named in the site configuration
(`checks.data_docs._site_config`), the extension point GX documents for
custom renderers; nothing of GX is patched.
"""

from __future__ import annotations

from great_expectations.render.components import RenderedStringTemplateContent
from great_expectations.render.renderer import SiteIndexPageRenderer, ValidationResultsPageRenderer
from great_expectations.render.renderer.content_block import ValidationResultsTableContentBlockRenderer
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

# status → (label, Font Awesome icon classes); the label is what `checks.run.STATUS_LABEL` records
STATUS_ICON = {
    "passed": ("通过 passed", ["fas", "fa-check-circle", "text-success", "ge-success-icon"]),
    "warnings": ("警告 warnings only", ["fas", "fa-exclamation-triangle", "text-warning", "lowincome-warning-icon"]),
    "failed": ("未通过 failed (blocking)", ["fas", "fa-times", "text-danger", "ge-failed-icon"]),
}
_BY_LABEL = {label: status for status, (label, _) in STATUS_ICON.items()}


def status_of(batch_spec: dict | None, success: bool | None) -> str:
    """The recorded status; results stored before it was recorded fall back to GX's pass/fail."""
    label = (batch_spec or {}).get("validation_status")
    if label in _BY_LABEL:
        return _BY_LABEL[label]
    return "passed" if success else "failed"


def _icon(status: str) -> str:
    label, classes = STATUS_ICON[status]
    return f'<i class="{" ".join(classes)}" aria-hidden="true" title="{label}"></i>'


class StatusValidationResultsPageRenderer(ValidationResultsPageRenderer):
    """A validation page whose header says passed / warnings only / failed (blocking)."""

    @classmethod
    def _render_validation_header(cls, validation_results):
        header = super()._render_validation_header(validation_results)
        status = status_of(validation_results.meta.get("batch_spec"), validation_results.success)
        params = header.subheader.string_template["params"]
        params["success"] = STATUS_ICON[status][0]
        params["html_success_icon"] = _icon(status)
        params["data_asset"] = "数据文件 Data asset:"
        params["status_title"] = "状态 Status:"
        return header


# expectation severity (meta["severity"], `checks.suites._meta`) → (label, icon classes) for a failed expectation
SEVERITY_ICON = {
    "warning": ("警告 warning", ["fas", "fa-exclamation-triangle", "text-warning"]),
    "blocking": ("阻断 blocking", ["fas", "fa-times", "text-danger"]),
}


def _severity_cell(severity: str | None) -> RenderedStringTemplateContent:
    label, classes = SEVERITY_ICON.get(severity or "", SEVERITY_ICON["blocking"])
    return RenderedStringTemplateContent(
        content_block_type="string_template",
        string_template={
            "template": "$icon $label",
            "params": {"icon": "", "label": label},
            "styling": {"params": {"icon": {"tag": "i", "classes": classes}}},
        },
    )


class SeverityTableRenderer(ValidationResultsTableContentBlockRenderer):
    """Results table whose status cell, for a failed expectation, names its severity in words and colour."""

    @classmethod
    def _process_content_block(cls, content_block, has_failed_evr, render_object=None) -> None:
        super()._process_content_block(content_block, has_failed_evr, render_object=render_object)
        content_block.header_row = ["状态 Status", "期望 Expectation", "观测值 Observed Value", *content_block.header_row[3:]]
        content_block.header_row_options = {"状态 Status": {"sortable": True}}

    @classmethod
    def _get_content_block_fn(cls, expectation_type, expectation_config=None):
        row_fn = super()._get_content_block_fn(expectation_type=expectation_type, expectation_config=expectation_config)
        if row_fn is None:
            return None

        def with_severity(configuration=None, result=None, runtime_configuration=None, **kwargs):
            rows = row_fn(configuration=configuration, result=result, runtime_configuration=runtime_configuration, **kwargs)
            raised = bool((getattr(result, "exception_info", None) or {}).get("raised_exception"))
            if result is not None and not result.success and rows and rows[0]:
                severity = "blocking" if raised else ((result.expectation_config.meta or {}).get("severity"))
                rows[0][0] = _severity_cell(severity)
            return rows

        return with_severity


class StatusSiteIndexBuilder(DefaultSiteIndexBuilder):
    """Hands the index renderer the recorded status instead of GX's pass/fail boolean."""

    def add_resource_info_to_index_links_dict(self, index_links_dict, expectation_suite_name, section_name,
                                              batch_identifier=None, run_id=None, validation_success=None,
                                              run_time=None, run_name=None, asset_name=None, batch_kwargs=None,
                                              batch_spec=None):
        if section_name == "validations":
            validation_success = status_of(batch_spec, validation_success)
        return super().add_resource_info_to_index_links_dict(
            index_links_dict, expectation_suite_name, section_name, batch_identifier=batch_identifier,
            run_id=run_id, validation_success=validation_success, run_time=run_time, run_name=run_name,
            asset_name=asset_name, batch_kwargs=batch_kwargs, batch_spec=batch_spec)


class StatusSiteIndexPageRenderer(SiteIndexPageRenderer):
    """The index's status column in three states; its filter text says the same words."""

    @classmethod
    def _render_validation_success_cell(cls, validation_success):
        status = validation_success if validation_success in STATUS_ICON else ("passed" if validation_success else "failed")
        label, classes = STATUS_ICON[status]
        return RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={
                "template": "$validation_success $label",
                "params": {"validation_success": "", "label": label},
                "styling": {
                    "params": {"validation_success": {"tag": "i", "classes": classes}},
                    "classes": ["ge-index-page-table-validation-links-item"],
                },
            },
        )

    @classmethod
    def _generate_validation_results_link_table(cls, index_links_dict):
        table = super()._generate_validation_results_link_table(index_links_dict)
        links = index_links_dict.get("validations_links", [])
        for row, link in zip(table.table_data, links):
            status = link.get("validation_success")
            if status in STATUS_ICON:
                row["_validation_success_text"] = STATUS_ICON[status][0]
        return table
