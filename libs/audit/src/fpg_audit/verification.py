"""Checking a chain of records, from the database or from an export, against its checkpoints.

One walk serves both: each record must follow the one before without a gap, link to its hash and
hash to its own; the checkpoints then say where the chain may start (after a prune), which hashes
it must still have, how far it must reach, and how far it may run past the last checkpoint.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from fpg_audit.chain import GENESIS_HASH, record_hash
from fpg_audit.checkpoints import (
    GENESIS_MAC,
    Checkpoint,
    CheckpointLog,
    CheckpointPolicy,
    parse_checkpoint,
    signature_holds,
)

FindingKind = Literal[
    "broken",  # a record changed, inserted or removed inside the chain
    "truncated",  # records missing at the end (after a checkpoint), or at the start (not pruned)
    "rewritten",  # a record no longer has the hash a checkpoint signed
    "checkpoint_missing",  # records too far past the last checkpoint, or a gap in the file
    "checkpoint_invalid",  # a line of the checkpoint file not signed by the key
]


class Finding(BaseModel):
    kind: FindingKind
    seq: int | None = None  # the record it concerns, where there is one
    message: str


class ChainReport(BaseModel):
    ok: bool
    records: int
    first_broken: int | None = None
    problem: str | None = None
    last_hash: str
    checkpoints: int | None = None  # checkpoints checked; None: checkpoints are off
    findings: list[Finding] = []


@dataclass(frozen=True)
class WalkedRecord:
    """A record as ``verify_chain`` walks it: its fields with ``hash``, and, from a database, what
    is wrong with how it is stored (not canonical, columns that disagree with the text)."""

    fields: dict[str, Any]
    storage_problem: str | None = None


class CheckpointCheck:
    """The checkpoints a chain must agree with; with none (checkpoints off), the chain alone."""

    def __init__(
        self,
        checkpoints: Sequence[Checkpoint] = (),
        policy: CheckpointPolicy | None = None,
        file_findings: Sequence[Finding] = (),
    ) -> None:
        self.checkpoints = list(checkpoints)
        self.policy = policy
        self.file_findings = list(file_findings)
        self._at_seq: dict[int, list[Checkpoint]] = {}
        for checkpoint in self.checkpoints:
            self._at_seq.setdefault(checkpoint.seq, []).append(checkpoint)
        self._last = max(self.checkpoints, key=lambda c: (c.seq, c.number), default=None)
        self._reported: set[FindingKind] = set()

    @classmethod
    def from_lines(
        cls, lines: Iterable[str], key: bytes, policy: CheckpointPolicy
    ) -> "CheckpointCheck":
        """The signed, unbroken checkpoints of a file; lines that are not are findings, and kept
        out of the comparison (an unsigned line proves nothing)."""
        trusted: list[Checkpoint] = []
        findings: list[Finding] = []
        previous_number, previous_mac = 0, GENESIS_MAC
        for line_number, line in enumerate(lines, 1):
            checkpoint = parse_checkpoint(line)
            if checkpoint is None:
                findings.append(_file_finding(f"line {line_number} is not a checkpoint"))
                continue
            if not signature_holds(key, checkpoint):
                findings.append(
                    _file_finding(
                        f"checkpoint #{checkpoint.number}: the signature does not hold (edited, or "
                        "signed with another key)"
                    )
                )
                continue
            if checkpoint.number != previous_number + 1 or checkpoint.prev_mac != previous_mac:
                findings.append(
                    Finding(
                        kind="checkpoint_missing",
                        message=f"checkpoint #{checkpoint.number} does not follow checkpoint "
                        f"#{previous_number}: checkpoints were removed from the file",
                    )
                )
            trusted.append(checkpoint)
            previous_number, previous_mac = checkpoint.number, checkpoint.mac
        return cls(trusted, policy, findings)

    @classmethod
    def of_log(cls, log: CheckpointLog | None) -> "CheckpointCheck":
        return cls() if log is None else cls.from_lines(log.lines(), log.key, log.policy)

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    def anchor(self, first_seq: int) -> tuple[str, Finding | None]:
        """The hash the first record present must link to: the genesis, or a pruned checkpoint's."""
        pruned = {c.seq: c.hash for c in self.checkpoints if c.kind == "pruned"}
        anchors = {0: GENESIS_HASH, **pruned}
        if first_seq - 1 in anchors:
            return anchors[first_seq - 1], None
        covered = max((seq for seq in anchors if seq < first_seq), default=0)
        return GENESIS_HASH, Finding(
            kind="truncated",
            seq=first_seq,
            message=f"records {covered + 1} to {first_seq - 1} are missing before the first "
            f"record, seq {first_seq}, and no pruned checkpoint accounts for them",
        )

    def see(self, seq: int, hash_: str, time: str) -> list[Finding]:
        """Compare one record, in chain order, with the checkpoints."""
        findings = []
        for checkpoint in self._at_seq.get(seq, []):
            if checkpoint.hash != hash_:
                findings += self._once(
                    "rewritten",
                    seq,
                    f"record seq {seq} no longer has the hash checkpoint #{checkpoint.number} "
                    f"signed at {checkpoint.time}: the chain was changed and re-hashed from there",
                )
        last = self._last
        beyond_last = last is None or seq > last.seq
        if self.policy is not None and beyond_last and self.policy.due(last, seq, time):
            since = "none" if last is None else f"#{last.number} (seq {last.seq})"
            findings += self._once(
                "checkpoint_missing",
                seq,
                f"record seq {seq}, written at {time}, is past the checkpoint policy (last "
                f"checkpoint: {since}): a checkpoint that should exist is missing",
            )
        return findings

    def end(self, last_seq: int) -> list[Finding]:
        """After the last record: the chain must reach the latest checkpoint."""
        last = self._last
        if last is None or last_seq >= last.seq:
            return []
        return self._once(
            "truncated",
            last_seq + 1,
            f"records {last_seq + 1} to {last.seq} are missing at the end of the chain: "
            f"checkpoint #{last.number} signed seq {last.seq} at {last.time}",
        )

    def _once(self, kind: FindingKind, seq: int, message: str) -> list[Finding]:
        """The first finding of each kind: one cut or rewrite shows at every later checkpoint."""
        if kind in self._reported:
            return []
        self._reported.add(kind)
        return [Finding(kind=kind, seq=seq, message=message)]


def verify_chain(records: Iterable[WalkedRecord], check: CheckpointCheck) -> ChainReport:
    """Walk ``records`` in ``seq`` order; stop at the first broken link, and report every
    finding of the checkpoints until then."""
    findings = list(check.file_findings)
    count, prev_hash, expected_seq, completed = 0, GENESIS_HASH, None, True
    for record in records:
        fields = record.fields
        seq = fields.get("seq")
        count += 1
        if expected_seq is None and isinstance(seq, int):
            prev_hash, cut = check.anchor(seq)
            if cut is not None:
                findings.append(cut)
                completed = False
                break
            expected_seq = seq
        problem = (
            _gap(seq, expected_seq) or record.storage_problem or _link_problem(fields, prev_hash)
        )
        if problem is not None:
            findings.append(Finding(kind="broken", seq=seq, message=problem))
            completed = False
            break
        findings += check.see(int(fields["seq"]), str(fields["hash"]), str(fields.get("time")))
        prev_hash = str(fields["hash"])
        expected_seq = int(fields["seq"]) + 1
    if completed:
        findings += check.end(0 if expected_seq is None else expected_seq - 1)
    first = findings[0] if findings else None
    return ChainReport(
        ok=first is None,
        records=count,
        first_broken=None if first is None else first.seq,
        problem=None if first is None else first.message,
        last_hash=prev_hash,
        checkpoints=len(check.checkpoints) if check.enabled else None,
        findings=findings,
    )


def _gap(seq: object, expected_seq: int | None) -> str | None:
    if seq != expected_seq:
        return f"a record is missing before seq {seq} (expected {expected_seq})"
    return None


def _link_problem(fields: dict[str, Any], prev_hash: str) -> str | None:
    if fields.get("prev_hash") != prev_hash:
        return "prev_hash does not match the previous record's hash"
    if record_hash(fields) != fields.get("hash"):
        return "the record's content does not match its hash"
    return None


def _file_finding(message: str) -> Finding:
    return Finding(kind="checkpoint_invalid", message=message)
