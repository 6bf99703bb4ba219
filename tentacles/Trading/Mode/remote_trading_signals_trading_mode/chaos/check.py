"""The chaos run's accounting: pure functions of what the run recorded, no I/O.

Inputs, all gathered by the run:
- the publisher's outbox rows (u, the q its ack carried), in the order they were enqueued;
- the hub's journal at the end (q, u), read back through the history API;
- every re-send of an already acknowledged u (the q of its first ack, the q the re-send got);
- per follower, the JSON lines `octobot-signals follow --json` printed, one list per process run (a run
  ends with a kill -9 or the final SIGTERM), and the final `stopped` summary (open orders).

The definitions (also in `octobot-signals chaos --help` and the README):
- lost: an outbox row never acknowledged, an acknowledged u missing from the journal, and, per follower,
  a journaled q for which no run printed a line (applied, or recognised as applied by an earlier run).
- duplicates: a u journaled under two q, a re-sent u acknowledged with another q than its first ack, an
  ack whose q the journal holds for another u; per follower, an order content applied (created, edited,
  cancelled) more than once across its runs, and an order still open at the end that no line of the last
  run accounts for.
- gaps: a q missing from the journal's 1..last q; per follower, a line for q printed while some lower
  journaled q had no line yet (one per hole: counted once per lowest missing q).
- out_of_order: two outbox rows whose ack q does not follow their enqueue order; per follower, an
  applied line whose q is lower than a q that follower already applied.
- skipped: a line that neither applies nor is a restart's recognition of earlier work (the run's signals
  are all applicable: a resting buy limit of 0.1 % and its cancel), e.g. a cancel that finds no copy
  although the copy was placed by the same process.

A restart's recognition (not counted): after a kill -9 the hub redelivers what the follower had not yet
recorded as applied, and the mode answers from its order map (`already applied`, `already copied`,
`was being copied when the bot stopped`). The simulated exchange of `follow` is in memory and starts empty
at each run, so a cancel of a copy placed by an earlier run finds it gone (`already closed`, `no matching
open order`): accounted, since that copy's run ended with the kill.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

APPLIED = ("created", "edited", "cancelled")
# the mode's answers to a message or order that an earlier process of the same follower handled
RECOGNISED_EARLIER = ("already applied", "already copied", "was being copied when the bot stopped")
# a cancel whose copy lived on the in-memory exchange of an earlier run (gone with that process)
COPY_GONE = ("is already closed", "no matching open order")
MAX_EXAMPLES = 20


@dataclass
class FollowerRun:
    lines: list[dict[str, Any]] = field(default_factory=list)  # outcome lines, in the order printed
    stopped: dict[str, Any] | None = None  # the `stopped` summary: only a run that ended with SIGTERM has one


@dataclass
class FollowerHistory:
    name: str
    runs: list[FollowerRun] = field(default_factory=list)


@dataclass
class Resend:
    u: str
    first_q: int
    got_q: int


@dataclass
class Report:
    lost: int = 0
    duplicates: int = 0
    gaps: int = 0
    out_of_order: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)
    per_follower: dict[str, dict[str, int]] = field(default_factory=dict)
    recognised: int = 0  # not a failure: lines answering for an earlier run's work after a kill -9

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.gaps or self.out_of_order or self.skipped)

    def counters(self) -> dict[str, int]:
        return {"lost": self.lost, "duplicates": self.duplicates, "gaps": self.gaps,
                "out_of_order": self.out_of_order, "skipped": self.skipped}

    def _add(self, counter: str, amount: int, example: str, follower: str | None = None) -> None:
        if amount <= 0:
            return
        setattr(self, counter, getattr(self, counter) + amount)
        if follower is not None:
            stats = self.per_follower.setdefault(follower, {})
            stats[counter] = stats.get(counter, 0) + amount
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{counter} +{amount}: {example}")


def check_run(published: list[tuple[str, int | None]], journal: list[tuple[int, str]], resends: list[Resend],
              followers: list[FollowerHistory]) -> Report:
    report = Report()
    journal_q = _check_publisher_and_journal(report, published, journal, resends)
    for history in followers:
        report.per_follower.setdefault(history.name, {})
        _check_follower(report, history, journal_q)
    return report


def _check_publisher_and_journal(report: Report, published: list[tuple[str, int | None]],
                                 journal: list[tuple[int, str]], resends: list[Resend]) -> set[int]:
    q_of_u: dict[str, int] = {}
    u_of_q: dict[int, str] = {}
    for q, u in journal:
        if u in q_of_u:
            report._add("duplicates", 1, f"journal: u={u} under q={q_of_u[u]} and q={q}")
        else:
            q_of_u[u] = q
        u_of_q[q] = u
    last_q = max(u_of_q, default=0)
    missing = [q for q in range(1, last_q + 1) if q not in u_of_q]
    report._add("gaps", len(missing), f"journal: no q {missing[:5]} in 1..{last_q}")
    previous_q = 0
    for u, acked_q in published:
        if acked_q is None:
            report._add("lost", 1, f"publisher: u={u} never acknowledged")
            continue
        if u not in q_of_u:
            report._add("lost", 1, f"publisher: u={u} acked q={acked_q}, not in the journal")
        elif q_of_u[u] != acked_q:
            report._add("duplicates", 1, f"publisher: u={u} acked q={acked_q}, journal has it at q={q_of_u[u]}")
        if acked_q <= previous_q:
            report._add("out_of_order", 1, f"publisher: u={u} acked q={acked_q} after q={previous_q}")
        previous_q = max(previous_q, acked_q)
    for resend in resends:
        if resend.got_q != resend.first_q:
            report._add("duplicates", 1, f"re-send: u={resend.u} first acked q={resend.first_q}, "
                                         f"re-sent and acked q={resend.got_q}")
    return set(u_of_q)


def _reason(line: dict[str, Any]) -> str:
    return str(line.get("reason") or "")


def _check_follower(report: Report, history: FollowerHistory, journal_q: set[int]) -> None:
    name = history.name
    seen_q: set[int] = set()  # q with a line (applied or recognised), all runs so far
    max_applied = 0
    applied_keys: Counter[tuple[str, str]] = Counter()  # (leader order id, action) -> applications
    placed_run: dict[str, int] = {}  # leader order id -> the run that placed (or recognised) its copy
    ordered_q = sorted(journal_q)
    low = 0  # ordered_q[low] is the lowest journaled q without a line yet
    jumped: set[int] = set()  # lowest missing q already counted as a gap
    for run_index, run in enumerate(history.runs):
        for line in run.lines:
            q = line.get("q")
            if not isinstance(q, int) or isinstance(q, bool):
                report._add("skipped", 1, f"{name}: a line without q: {line}", name)
                continue
            result = line.get("result")
            order_id = str(line.get("order_id"))
            action = str(line.get("action"))
            reason = _reason(line)
            if result in APPLIED:
                applied_keys[(order_id, action)] += 1
                if applied_keys[(order_id, action)] > 1:
                    report._add("duplicates", 1, f"{name}: {action} of leader order {order_id} applied again "
                                                 f"(q={q}, run {run_index + 1})", name)
                if q < max_applied:
                    report._add("out_of_order", 1, f"{name}: q={q} applied after q={max_applied}", name)
                max_applied = max(max_applied, q)
                if action == "create":
                    placed_run[order_id] = run_index
            elif run_index > 0 and any(text in reason for text in RECOGNISED_EARLIER):
                report.recognised += 1
                if action == "create":
                    placed_run.setdefault(order_id, run_index - 1)  # placed by a run that died before saying so
            elif (action == "cancel" and any(text in reason for text in COPY_GONE)
                  and placed_run.get(order_id, run_index) < run_index):
                report.recognised += 1  # its copy was on the in-memory exchange of a killed run
            else:
                report._add("skipped", 1, f"{name}: q={q} {action} {order_id} -> {result}: {reason}", name)
                # a skipped line still answers for its q: it is counted here, not again as lost
            if q not in seen_q and low < len(ordered_q) and ordered_q[low] < q and ordered_q[low] not in jumped:
                jumped.add(ordered_q[low])
                report._add("gaps", 1, f"{name}: q={q} before q={ordered_q[low]} (run {run_index + 1})", name)
            seen_q.add(q)
            while low < len(ordered_q) and ordered_q[low] in seen_q:
                low += 1
    lost = sorted(journal_q - seen_q)
    report._add("lost", len(lost), f"{name}: no line for q {lost[:5]}", name)
    _check_open_orders(report, history)


def _check_open_orders(report: Report, history: FollowerHistory) -> None:
    """An order open at the end that the last run's lines do not leave open is an extra copy."""
    if not history.runs or history.runs[-1].stopped is None:
        return
    last = history.runs[-1]
    expected: set[str] = set()
    for line in last.lines:
        ids = {str(order.get("id")) for order in line.get("orders") or []}
        if line.get("result") == "created":
            expected |= ids
        elif line.get("result") == "cancelled":
            expected -= ids
    extra = [order for order in last.stopped.get("open_orders") or [] if str(order.get("id")) not in expected]
    report._add("duplicates", len(extra), f"{history.name}: open at the end, no line placed it: "
                                          f"{[o.get('id') for o in extra[:3]]}", history.name)
