"""assessment.json: the canonical document itself (schema: reports/schema/assessment.schema.json).

Other tools and later Assay runs read this file, so it is exactly `Assessment.to_json()`; the
only change is masking (evidence and free text), applied again here as defence in depth.
"""

from __future__ import annotations

from reports._common import masked
from reports.assessment import Assessment
from scanner.plugins import Reporter


class JsonReporter(Reporter):
    format = "json"
    extension = "json"

    def render(self, assessment: Assessment) -> str:
        return masked(assessment).to_json() + "\n"
