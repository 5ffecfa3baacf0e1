"""The submission-time placement of a whole run (pipelines/run_placement.py decides it): the cluster it was
submitted to, when it starts, and why. It reaches the run as the `submission_placement` parameter, and the
carbon statement shows it beside the in-cluster placement of each stage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from components.carbon.records import PlacementDecision, _known, _mapping


@dataclass
class SubmissionPlacement:
    host: str  # the chosen cluster's Kubeflow Pipelines API
    context: str  # its kube context, as the catalog names it
    decision: PlacementDecision  # the whole run as one job, among the regions of every cluster in the catalog
    clusters: dict[str, list[str]] = field(default_factory=dict)  # kfp_host -> its regions in the catalog
    decided_at: str = ""

    @property
    def region(self) -> str:
        return self.decision.chosen.region

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.decision.chosen.start)

    @property
    def scheduled(self) -> bool:
        """Started later than submitted (a one-off scheduled run), for a cleaner forecast window."""
        return self.decision.chosen.wait_hours > 0

    def to_json(self) -> dict:
        return {
            "host": self.host,
            "context": self.context,
            "decision": self.decision.to_json(),
            "clusters": self.clusters,
            "decided_at": self.decided_at,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict | str, origin: str = "submission placement") -> SubmissionPlacement:
        values = _known(cls, _mapping(data, origin), origin)
        values["decision"] = PlacementDecision.from_json(values["decision"], f"{origin}: decision")
        return cls(**values)

    def summary(self) -> str:
        when = f"scheduled to start {self.decision.chosen.start}" if self.scheduled else "started at submission"
        clusters = len(self.clusters)
        return (
            f"submitted to {self.host} ({self.context or 'no kube context named'}) for region {self.region}, "
            f"{when}, the least expected emissions among {clusters} cluster(s): {self.decision.reason}"
        )
