"""What a run did: where its source rows went (:class:`Counts`) and its outcome (:class:`RunReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counts:
    """Where the source rows went. ``inserted + updated + skipped + rejected == read``."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    batches: int = 0
    bytes: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def balanced(self) -> bool:
        return self.inserted + self.updated + self.skipped_total + self.rejected == self.read

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.rejected += other.rejected
        self.batches += other.batches
        self.bytes += other.bytes
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {"read": self.read, "inserted": self.inserted, "updated": self.updated, "skipped": self.skipped_total,
                "skipped_by_reason": dict(self.skipped), "rejected": self.rejected, "batches": self.batches,
                "bytes": self.bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        return cls(data.get("read", 0), data.get("inserted", 0), data.get("updated", 0),
                   dict(data.get("skipped_by_reason", {})), data.get("rejected", 0), data.get("batches", 0),
                   data.get("bytes", 0))


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: str
    job: str
    status: str
    counts: Counts
    duration_s: float
    reject_path: str | None
    resumed: bool = False
    already_finished: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    earlier_rows: int = 0
    """Source rows the resumed run had committed before this process started (in ``counts``)."""
    quality: dict[str, Any] | None = None
    """With ``quality:`` checks: ``{"status", "summary", "failed": [{name, severity, message}], "reports": {format: path}}``."""

    @property
    def rows_moved(self) -> int:
        """Source rows this process read: a resumed run's counts include what earlier attempts did."""
        return 0 if self.already_finished else self.counts.read - self.earlier_rows

    @property
    def rows_per_s(self) -> float:
        """This process's rows over the time it took, not a resumed run's total over its last attempt."""
        return self.rows_moved / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "job": self.job, "status": self.status, "counts": self.counts.to_json(),
                "duration_s": round(self.duration_s, 3), "rows_per_s": round(self.rows_per_s, 1),
                "rejects_file": self.reject_path, "resumed": self.resumed,
                "already_finished": self.already_finished, "warnings": self.warnings, "error": self.error,
                "quality": self.quality}
