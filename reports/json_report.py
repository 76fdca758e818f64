"""assessment.json: the canonical document (schema in reports/schema/assessment.schema.json)."""

from __future__ import annotations

from typing import Any

from reports.assessment import Assessment
from scanner.masking import mask_evidence
from scanner.plugins import Reporter


class JsonReporter(Reporter):
    format = "json"
    extension = "json"

    def render(self, assessment: Any) -> str:
        assert isinstance(assessment, Assessment)
        safe = assessment.model_copy(
            update={
                "outcomes": [
                    o.model_copy(update={"evidence": mask_evidence(o.evidence)})
                    for o in assessment.outcomes
                ]
            }
        )
        return safe.to_json() + "\n"
