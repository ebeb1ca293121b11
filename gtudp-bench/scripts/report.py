#!/usr/bin/env python3
"""Writes BENCHMARKS.md, and the README's table of headline figures, from
the outputs `report.sh` collected in one run directory.

    python3 gtudp-bench/scripts/report.py RUN_DIR --output BENCHMARKS.md [--readme README.md]

RUN_DIR holds, per measurement NAME (in the order of RUN_DIR/order):
NAME.cmd (the command line), NAME.out (its output), NAME.status,
NAME.seconds, NAME.load_start and NAME.load_end, or NAME.skipped (why it
did not run); and `meta` (the machine and the commit). Every figure is
parsed defensively: a figure a tool did not print shows as "n/a", and a
section whose output cannot be read says so; the page is always written.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

NA = "n/a"
RUN: Path = Path(".")
PAGE_DIR: Path = Path(".")


# --- reading the run


def read(name: str, ext: str) -> Optional[str]:
    path = RUN / f"{name}.{ext}"
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def out(name: str) -> str:
    return read(name, "out") or ""


def meta() -> Dict[str, str]:
    values: Dict[str, str] = {}
    try:
        text = (RUN / "meta").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        values[key.strip()] = value.strip()
    return values


def tables(text: str) -> List[Tuple[List[str], List[List[str]]]]:
    """Every Markdown table in `text`: (header cells, rows of cells)."""
    found: List[Tuple[List[str], List[List[str]]]] = []
    block: List[List[str]] = []
    for line in text.splitlines() + [""]:
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            block.append(cells)
        elif block:
            found.append((block[0], block[1:]))
            block = []
    return found


def table_after(text: str, marker: str) -> Optional[Tuple[List[str], List[List[str]]]]:
    """The first table after the line containing `marker`."""
    index = text.find(marker)
    if index < 0:
        return None
    found = tables(text[index:])
    return found[0] if found else None


def column(header: List[str], start: str) -> Optional[int]:
    for i, cell in enumerate(header):
        if cell.lower().startswith(start.lower()):
            return i
    return None


def row_named(table: Optional[Tuple[List[str], List[List[str]]]], name: str) -> Optional[Dict[str, str]]:
    if table is None:
        return None
    header, rows = table
    for row in rows:
        if row and row[0] == name:
            return {header[i]: row[i] if i < len(row) else "" for i in range(len(header))}
    return None


def kv(line: str) -> Dict[str, str]:
    """key=value tokens of a result line."""
    return dict(token.split("=", 1) for token in line.split() if "=" in token and not token.startswith("="))


def last_line_with(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    return lines[-1] if lines else ""


def number(value: Optional[str]) -> Optional[float]:
    """The first number in `value` (commas and units ignored)."""
    if value is None:
        return None
    match = re.search(r"-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?", value)
    if not match:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


def fmt(value: Optional[float], digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return NA
    if digits == 0:
        return f"{value:,.0f}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def kilo(value: Optional[float]) -> str:
    return NA if value is None else f"{value / 1000:,.0f} k"


def ratio(a: Optional[float], b: Optional[float], digits: int = 2) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def fratio(a: Optional[float], b: Optional[float], digits: int = 2) -> str:
    r = ratio(a, b, digits + 2)
    return NA if r is None else f"{r:.{digits}f}"


def median(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def span(values: Sequence[Optional[float]], digits: int = 0) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return NA
    low, high = min(present), max(present)
    return fmt(low, digits) if low == high else f"{fmt(low, digits)}-{fmt(high, digits)}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) if str(c) != "" else " " for c in row) + " |")
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


# --- the page's pieces


class Section:
    def __init__(self, title: str, what: str, names: Sequence[str]):
        self.title = title
        self.what = what
        self.names = list(names)
        self.lines: List[str] = []

    @property
    def anchor(self) -> str:
        return "BENCHMARKS.md#" + slug(self.title)

    def ran(self) -> List[str]:
        return [n for n in self.names if read(n, "skipped") is None and read(n, "cmd") is not None]

    def render(self, body: Callable[["Section"], None]) -> List[str]:
        lines = [f"## {self.title}", "", self.what, ""]
        skipped = [(n, read(n, "skipped")) for n in self.names if read(n, "skipped") is not None]
        ran = self.ran()
        if skipped and not ran:
            lines.append(f"skipped: {skipped[0][1].strip()}")
            return lines + [""]
        if not ran:
            lines.append("not run (the run stopped before it)")
            return lines + [""]
        lines.append("```sh")
        commands: List[str] = []
        for name in ran:
            cmd = (read(name, "cmd") or "").strip()
            repeat = name.split(".")[0]
            count = sum(1 for n in ran if n.split(".")[0] == repeat)
            if "." in name and count > 1:
                if name.endswith(".1"):
                    commands.append(f"{cmd}   # {count} runs")
            else:
                commands.append(cmd)
        lines += commands + ["```", ""]
        notes = []
        for name in ran:
            seconds = number(read(name, "seconds"))
            load = f"load {(read(name, 'load_start') or NA).strip()} → {(read(name, 'load_end') or NA).strip()}"
            status = (read(name, "status") or "").strip()
            state = ""
            if status == "124" or status == "137":
                state = ", **timed out**"
            elif status not in ("", "0"):
                state = f", **exit status {status}**"
            lock = " (takes the timing lock per measurement)" if read(name, "locking") else ""
            notes.append(f"`{name}` {fmt(seconds, 1)} s, {load}{state}{lock}")
        lines.append("Ran: " + "; ".join(notes) + ".")
        for name, why in skipped:
            lines.append(f"`{name}` skipped: {why.strip()}.")
        lines.append("")
        self.lines = []
        try:
            body(self)
        except Exception as error:  # a tool's output changed: say so, keep the page
            self.lines.append(f"(the output could not be read: {type(error).__name__}: {error}; see {RUN}/)")
        return lines + self.lines + [""]


README_ROWS: List[Tuple[str, str, str, str]] = []  # (what, anchor, gtudp, beside)


def headline(what: str, section: Section, ours: str, beside: str) -> None:
    README_ROWS.append((what, section.anchor, ours, beside))


# --- compare


def compare_table(text: str, marker: str = "") -> Optional[Tuple[List[str], List[List[str]]]]:
    for header, rows in tables(text[text.find(marker) :] if marker and marker in text else text):
        if header and header[0] == "name" and column(header, "msgs/s") is not None:
            return header, rows
    return None


def compare_rows(table) -> Dict[str, Dict[str, Optional[float] | str]]:
    result: Dict[str, Dict] = {}
    if table is None:
        return result
    header, rows = table
    for row in rows:
        get = {header[i]: row[i] if i < len(row) else "" for i in range(len(header))}
        notes = get.get("loss or notes", "")
        retx = re.search(r"(\d+) retransmissions", notes)
        rss = re.search(r"peak RSS (\d+) MiB", notes)
        loss = re.search(r"(\d+(?:\.\d+)?) ?% lost", notes) or re.search(r"lost (\d+(?:\.\d+)?) ?%", notes)
        delivered = get.get("delivered / received", "")
        result[row[0]] = {
            "rate": number(get.get("msgs/s")),
            "cpu": number(get.get("CPU per msg")),
            "retx": float(retx.group(1)) if retx else None,
            "rss": float(rss.group(1)) if rss else None,
            "counts": delivered,
            "notes": notes,
            "confirm": get.get("send→delivered p50 / p99", NA),
            "oneway": get.get("send→recv p50 / p99", NA),
            "loss": received_loss(delivered),
        }
    return result


def received_loss(counts: str) -> Optional[float]:
    """Percent not received, from 'D/N delivered, R/N received' or '-, R/N received'."""
    match = re.search(r"(\d+)/(\d+) received", counts)
    if not match or int(match.group(2)) == 0:
        return None
    return 100.0 * (1 - int(match.group(1)) / int(match.group(2)))


def section_compare(s: Section) -> None:
    s.lines.append(
        "msgs/s counts from the first send to the last completion (Delivered for gtudp-tokio, the last "
        "message received for the others); raw UDP and laminar/KCP rows count what was received. "
        "Median of the runs by msgs/s; CPU is the whole process (both sides) per message."
    )
    s.lines.append("")
    for name, label in (("compare_256", "256 B"), ("compare_1024", "1024 B")):
        if name not in s.ran():
            continue
        text = out(name)
        head = last_line_with(text, "one-way over 127.0.0.1") or label
        rows = compare_rows(compare_table(text))
        raw = rows.get("raw-udp", {}).get("rate")
        s.lines.append(f"**{head.strip()}**")
        s.lines.append("")
        table = []
        for impl, r in rows.items():
            table.append(
                [
                    impl,
                    fmt(r["rate"]),
                    "1" if impl == "raw-udp" else fratio(r["rate"], raw),
                    r["counts"] or NA,
                    fmt(r["loss"], 1, " %"),
                    fmt(r["retx"]) if r["retx"] is not None else "-",
                    r["oneway"],
                    r["confirm"],
                    fmt(r["cpu"], 1, " µs"),
                    fmt(r["rss"], 0, " MiB") if r["rss"] is not None else "-",
                ]
            )
        if not table:
            s.lines.append(f"({NA}: no table in the output)")
        s.lines += md_table(
            [
                "implementation",
                "msgs/s",
                "÷ raw-udp",
                "delivered / received",
                "not received",
                "retransmissions",
                "send→recv p50 / p99",
                "send→Delivered p50 / p99",
                "CPU per msg",
                "peak RSS",
            ],
            table,
        )
        s.lines.append("")
        if name == "compare_256":
            ours = rows.get("gtudp-tokio", {})
            headline(
                "one-way, 50,000 × 256 B (gtudp-tokio, each confirmed)",
                s,
                f"{kilo(ours.get('rate'))} msgs/s",
                f"raw UDP {kilo(raw)} msgs/s, not receiving {fmt(rows.get('raw-udp', {}).get('loss'), 1, ' %')}; "
                f"ratio {fratio(ours.get('rate'), raw)}",
            )


def paired_ratio(pairs, long_rate, burst_rate) -> str:
    """The sustained-over-burst cell: the alternated pairs' median ratio and
    range, then the ratio of the two medians."""
    medians = fratio(long_rate, burst_rate)
    if not pairs:
        return medians
    median, count, least, greatest = pairs
    return f"{median} ({least}-{greatest}, {count} pairs); {medians}"


def section_sustained(s: Section) -> None:
    text = out("sustained")
    parts = [p for p in re.split(r"\n(?=\d+ messages x \d+ B one-way)", text) if "one-way over" in p]
    burst = compare_rows(compare_table(parts[0])) if parts else {}
    long = compare_rows(compare_table(parts[1])) if len(parts) > 1 else {}
    text100 = out("oneway_100k")
    b100 = compare_rows(compare_table(text100))
    counts = [last_line_with(p, "one-way over").strip() for p in parts[:2]]
    g_b, r_b = burst.get("gtudp-tokio", {}), burst.get("raw-udp", {})
    g_l, r_l = long.get("gtudp-tokio", {}), long.get("raw-udp", {})
    g_h, r_h = b100.get("gtudp-tokio", {}), b100.get("raw-udp", {})
    head100 = last_line_with(text100, "one-way over").strip()
    # Each burst run is followed by a sustained one (see `compare
    # --sustained`): the median of those pairs' ratios.
    paired = {
        m.group(1): (m.group(2), m.group(3), m.group(4), m.group(5))
        for m in re.finditer(
            r"^- (\S+): median ([\d.]+) of (\d+) pairs \(from ([\d.]+) to ([\d.]+)\)$", text, re.M
        )
    }
    s.lines.append(
        "Runs: " + "; ".join(c for c in counts + [head100] if c) + ". Retransmissions are the sender's; "
        "peak RSS is the whole process, both endpoints."
    )
    s.lines.append("")
    s.lines += md_table(
        ["64 B one-way, 1,024 in flight", "raw UDP msgs/s", "gtudp-tokio msgs/s", "gtudp ÷ raw", "target (issue 20)"],
        [
            ["burst (first run above)", fmt(r_b.get("rate")), fmt(g_b.get("rate")), fratio(g_b.get("rate"), r_b.get("rate")), ""],
            ["100,000 burst", fmt(r_h.get("rate")), fmt(g_h.get("rate")), fratio(g_h.get("rate"), r_h.get("rate")), "≥ 1.2"],
            [
                "sustained (second run above)",
                fmt(r_l.get("rate")),
                f"{fmt(g_l.get('rate'))} ({fmt(g_l.get('retx'))} retransmissions, {fmt(g_l.get('rss'))} MiB peak RSS)",
                fratio(g_l.get("rate"), r_l.get("rate")),
                "≥ 0.8",
            ],
            [
                "sustained ÷ burst: median of the alternated pairs (their range); the medians' ratio",
                paired_ratio(paired.get("raw-udp"), r_l.get("rate"), r_b.get("rate")),
                paired_ratio(paired.get("gtudp-tokio"), g_l.get("rate"), g_b.get("rate")),
                "",
                "≥ 0.95",
            ],
            [
                "CPU per message, sustained, whole process",
                fmt(r_l.get("cpu"), 1, " µs"),
                fmt(g_l.get("cpu"), 1, " µs"),
                fratio(g_l.get("cpu"), r_l.get("cpu")),
                "≤ 1.5",
            ],
            [
                "raw UDP not received, sustained",
                fmt(r_l.get("loss"), 1, " %"),
                "",
                "",
                "",
            ],
        ],
    )
    headline(
        "a sustained stream, 1,000,000 × 64 B (gtudp-tokio, each confirmed)",
        s,
        f"{kilo(g_l.get('rate'))} msgs/s in {fmt(g_l.get('rss'))} MiB RSS, {fmt(g_l.get('cpu'), 1)} µs CPU a message",
        f"{fratio(g_l.get('rate'), r_l.get('rate'))} × a raw UDP blast in the same run "
        f"({fmt(r_l.get('cpu'), 1)} µs CPU), which did not receive {fmt(r_l.get('loss'), 1, ' %')}",
    )


# --- echo


def echo_tables(text: str) -> Dict[int, Dict[str, Dict[str, str]]]:
    result: Dict[int, Dict[str, Dict[str, str]]] = {}
    for match in re.finditer(r"(\d+) in flight, median", text):
        inflight = int(match.group(1))
        table = table_after(text[match.start() :], "in flight")
        rows: Dict[str, Dict[str, str]] = {}
        if table:
            header, body = table
            for row in body:
                rows[row[0]] = {header[i]: row[i] if i < len(row) else "" for i in range(len(header))}
        result[inflight] = rows
    return result


def section_echo(s: Section) -> None:
    by = echo_tables(out("echo"))
    s.lines.append(
        "RTT is from send to the echo's arrival; CPU is the whole process per echo; retransmissions are both "
        "gtudp sockets'. A guaranteed echo is six datagrams (DATA, RECV, ACK each way), a raw one two."
    )
    s.lines.append("")
    targets = {
        (1, "gtudp-tokio"): ("RTT p50 ≤ 1.2 (issue 21)", ""),
        (1, "gtudp-blocking"): ("RTT p50 ≤ 1.2 (issue 21)", ""),
        (64, "gtudp-tokio"): ("", "≥ 0.9 (issue 21)"),
        (64, "gtudp-blocking"): ("", "≥ 0.6 (issue 20), ≥ 0.7 (issue 21)"),
    }
    peers = {"gtudp-tokio": "raw-tokio", "gtudp-blocking": "raw-std"}
    for inflight in sorted(by):
        rows = by[inflight]
        table = []
        for impl in ("raw-std", "gtudp-blocking", "raw-tokio", "gtudp-tokio"):
            r = rows.get(impl)
            if r is None:
                continue
            peer = rows.get(peers.get(impl, ""), {})
            rtt_t, rate_t = targets.get((inflight, impl), ("", ""))
            rtt_ratio = fratio(number(r.get("RTT p50 µs")), number(peer.get("RTT p50 µs"))) if peer else ""
            rate_ratio = fratio(number(r.get("echoes/s")), number(peer.get("echoes/s"))) if peer else ""
            table.append(
                [
                    impl,
                    fmt(number(r.get("echoes/s"))),
                    r.get("RTT p50 µs", NA),
                    r.get("RTT p99 µs", NA),
                    (f"**{rtt_ratio}**" if rtt_ratio else "") + (f" ({rtt_t})" if rtt_t else ""),
                    (f"**{rate_ratio}**" if rate_ratio else "") + (f" ({rate_t})" if rate_t else ""),
                    r.get("CPU µs/echo", NA),
                    r.get("retransmissions", NA),
                    r.get("RSS MiB", NA),
                    r.get("stalled", NA),
                ]
            )
        s.lines.append(f"**{inflight} in flight**")
        s.lines.append("")
        s.lines += md_table(
            [
                "implementation",
                "echoes/s",
                "RTT p50 µs",
                "RTT p99 µs",
                "RTT p50 ÷ plain peer (target)",
                "echoes/s ÷ plain peer (target)",
                "CPU µs/echo",
                "retransmissions",
                "RSS MiB",
                "stalled",
            ],
            table,
        )
        s.lines.append("")
    spin = echo_tables(out("echo_spin")) if "echo_spin" in s.ran() else {}
    if spin:
        s.lines.append(
            "The blocking socket with `BlockingOptions::spin` of 50 µs (opt-in: a receive polls that long "
            "before it sleeps, keeping a CPU busy while it waits), beside a std socket in the same run "
            "(`echo_spin`):"
        )
        s.lines.append("")
        rows = []
        for inflight in sorted(spin):
            mine, std = spin[inflight].get("gtudp-blocking", {}), spin[inflight].get("raw-std", {})
            rows.append(
                [
                    str(inflight),
                    mine.get("RTT p50 µs", NA),
                    std.get("RTT p50 µs", NA),
                    fmt(number(mine.get("echoes/s"))),
                    fmt(number(std.get("echoes/s"))),
                    mine.get("CPU µs/echo", NA),
                ]
            )
        s.lines += md_table(
            [
                "in flight",
                "spinning RTT p50 µs",
                "std RTT p50 µs",
                "spinning echoes/s",
                "std echoes/s",
                "spinning CPU µs/echo",
            ],
            rows,
        )
        s.lines.append("")
    traces = [(impl, out(f"echo_trace_{impl}")) for impl in ("tokio", "raw-tokio", "blocking", "raw-std")]
    traces = [(impl, text, tables(text)) for impl, text in traces if f"echo_trace_{impl}" in s.ran()]
    if traces:
        s.lines.append(
            "Where one echo's time goes (`echo_trace`, one message in flight): each step's median offset from "
            "the client's send call, and the threads that ran it. A datagram's `out` is taken just before its "
            "send system call, its `in` just after the receive that read it; recording costs about a "
            "microsecond a step, so these round trips run a little above the table's."
        )
        s.lines.append("")
        for impl, text, found in traces:
            summary = last_line_with(text, "echoes traced")
            s.lines.append(f"**{impl}**: {summary.strip()}" if summary else f"**{impl}**")
            s.lines.append("")
            if found:
                s.lines += md_table(*found[0])
            s.lines.append("")
    one = by.get(1, {})
    p50 = {k: number(v.get("RTT p50 µs")) for k, v in one.items()}
    headline(
        "echo, one message in flight (64 B, RTT p50)",
        s,
        f"{fmt(p50.get('gtudp-tokio'))} µs (Tokio), {fmt(p50.get('gtudp-blocking'))} µs (blocking)",
        f"{fratio(p50.get('gtudp-tokio'), p50.get('raw-tokio'), 1)} × plain Tokio's "
        f"({fmt(p50.get('raw-tokio'))} µs), {fratio(p50.get('gtudp-blocking'), p50.get('raw-std'), 1)} × std's "
        f"({fmt(p50.get('raw-std'))} µs)",
    )


# --- the core


def criterion_times(text: str) -> Dict[str, Tuple[float, float, float]]:
    """bench name -> (low, estimate, high) in ns."""
    units = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
    found: Dict[str, Tuple[float, float, float]] = {}
    pattern = re.compile(
        r"^(\S+)\s*(?:\n\s*)?time:\s*\[([\d.]+) (\S+) ([\d.]+) (\S+) ([\d.]+) (\S+)\]", re.MULTILINE
    )
    for m in pattern.finditer(text):
        values = tuple(float(m.group(i)) * units.get(m.group(i + 1), float("nan")) for i in (2, 4, 6))
        found[m.group(1)] = values  # type: ignore[assignment]
    return found


def section_core(s: Section) -> None:
    times = criterion_times(out("criterion"))
    rows = []
    targets = {
        "exchange_64B_x64": "≤ 250 ns (issue 20)",
        "exchange_64B_x64_fresh_pair": "none: a new pair's first messages, for comparison",
        "steady_exchange_64B_x64_1M_remembered": "≤ 300 ns (issue 20)",
    }
    for bench, target in targets.items():
        key = next((k for k in times if k.endswith("/" + bench)), None)
        low, est, high = times[key] if key else (None, None, None)
        per = lambda v: None if v is None else v / 64  # noqa: E731
        rows.append(
            [
                f"`endpoint/{bench}`",
                fmt(per(est), 0, " ns"),
                f"{fmt(per(low))}-{fmt(per(high))} ns" if key else NA,
                fmt(None if est is None else est / 1000, 1, " µs"),
                target,
            ]
        )
    s.lines.append(
        "Criterion's estimate for 64 messages, divided by 64 (each through both endpoints). The benches' link "
        "moves datagrams as the adapters do: each side writes its datagrams in segmentation-offload batches "
        "(`poll_transmit(now, 64, buf)`) and the other reads them from one reused receive buffer "
        "(`handle_datagram_slice`), so the one copy per message is the DATA's payload, which the receiver keeps."
    )
    s.lines.append("")
    s.lines.append(
        "`exchange` runs on one pair in its steady state: rounds 100 ms apart in virtual time, so the receiver "
        "remembers the last 2 to 2.5 s of them (about 1,500 identities) and every table is at its working size. "
        "`exchange_fresh_pair` runs the second round of a new pair instead, from memory criterion set up before "
        "the timed loop (a batch's inputs are all made first): a pair's first messages, with tables growing into "
        "fresh allocations and every line cold. Until 2026-12-08 the `exchange` row measured that; its figures "
        "in older reports compare with `exchange_fresh_pair`. `steady_exchange` is the steady state with a "
        "million identities remembered."
    )
    s.lines.append("")
    s.lines += md_table(["bench", "per message", "confidence interval", "per 64", "target"], rows)
    s.lines.append("")
    exchange = number(rows[0][1]) if rows and rows[0][1] != NA else None
    curve = curve_points(out("curve"))
    ratio_10 = ratio(curve.get("pair 10000000"), curve.get("pair 10000"), 2)
    headline(
        "the core alone (one message through DATA → RECV → ACK, both endpoints, no sockets)",
        s,
        f"{fmt(exchange)} ns (criterion `exchange_64B_x64`)",
        f"per message, 10⁷ messages ÷ 10⁴: {fmt(ratio_10, 2)} (flat is 1)",
    )


def curve_points(text: str) -> Dict[str, Optional[float]]:
    points: Dict[str, Optional[float]] = {}
    for header, rows in tables(text):
        if header and header[0] == "run":
            for row in rows:
                points[row[0].replace(",", "")] = number(row[2]) if len(row) > 2 else None
    return points


def section_curve(s: Section) -> None:
    text = out("curve")
    # The tool prints a note line inside its table (the many-peers run's
    # server alone), which splits it in two: join them.
    found = [(h, r) for h, r in tables(text) if h and h[0] == "run"]
    rows = [row for _, r in found for row in r] + [h for h, _ in tables(text) if h and h[0].startswith("peers")]
    if not found:
        s.lines.append(f"({NA}: no table in the output)")
        return
    s.lines += md_table(found[0][0], rows)
    s.lines.append("")
    for note in re.findall(r"^(peers .*the server alone.*)$", text, re.MULTILINE):
        s.lines.append(f"{note.strip()}.")
        s.lines.append("")
    points = curve_points(text)
    s.lines.append(
        f"10⁷ ÷ 10⁴ per message: **{fmt(ratio(points.get('pair 10000000'), points.get('pair 10000'), 2), 2)}** "
        "(target ≤ 1.1, issue 20); 10⁶ ÷ 10⁴: "
        f"{fmt(ratio(points.get('pair 1000000'), points.get('pair 10000'), 2), 2)}."
    )


def section_instructions(s: Section) -> None:
    line = last_line_with(out("instructions"), "instructions and")
    s.lines.append(f"`{line.strip()}`" if line else f"({NA}: no result line)")
    stages = out("stages")
    found = tables(stages)
    if "stages" in s.ran() and found:
        s.lines.append("")
        s.lines.append(
            "Where they go, by stage (callgrind, inclusive: each row counts the functions named and all they "
            "call, so rows nest and do not add up; issue 20 asks for 300 ns, about 1,000 instructions):"
        )
        s.lines.append("")
        s.lines += md_table(*found[0])
    server = last_line_with(out("server_instructions"), "instructions,")
    if "server_instructions" in s.ran() and server:
        s.lines.append("")
        s.lines.append(
            "A server with many peers, its own phases only (`server_per_message.sh`: the curve's peers run, "
            "callgrind with a 2 MB last-level cache, the clients' endpoints left out): each peer's state is "
            "cold, so misses, not instructions, set its cost:"
        )
        s.lines.append("")
        s.lines.append(f"`{server.strip()}`")


# --- virtual time


def section_wan(s: Section) -> None:
    text = out("wan_matrix")
    seconds = re.search(r"--seconds (\S+)", read("wan_matrix", "cmd") or "")
    s.lines.append(
        f"Virtual seconds a cell: {seconds.group(1) if seconds else '10 (the default)'}. "
        "\"2nd half\" is the utilization over the run's second half alone: the steady state, with "
        "Startup left out. The targets judge the whole run."
    )
    s.lines.append("")
    found = tables(text)
    if not found:
        s.lines.append(f"({NA}: no table in the output)")
    else:
        s.lines += md_table(*found[0])
        s.lines.append("")
    plot = (read("wan_plot", "file") or "").strip()
    last = kv(out("wan_plot").strip().splitlines()[-1]) if out("wan_plot").strip() else {}
    if plot and Path(plot).exists():
        link = os.path.relpath(plot, PAGE_DIR)
        s.lines.append(
            f"gtudp (BBR) beside an AIMD flow on a clean 20 ms, 100 Mbit/s link (the plot's command above): "
            f"utilization {last.get('utilization', NA)}, smallest share {last.get('min_share', NA)}, "
            f"fairness {last.get('fairness', NA)}."
        )
        s.lines.append("")
        s.lines.append(f"![gtudp (BBR) beside an AIMD flow]({link})")
    cell = wan_cell(found[0] if found else None, "20ms 100M 1% loss")
    headline(
        "20 ms, 100 Mbit/s, 1 % loss (virtual time, any machine)",
        s,
        f"{cell.get('utilization', NA)} of the link",
        f"retransmit ratio {cell.get('retransmit ratio', NA)}, p99 {cell.get('p99 ms', NA)} ms",
    )


def section_large(s: Section) -> None:
    rows = []
    for name in s.ran():
        if not name.startswith("wan_large_"):
            continue
        cmd = read(name, "cmd") or ""
        arg = lambda flag: (re.search(flag + r" (\S+)", cmd) or [None, NA])[1]
        text = out(name)
        total = kv(last_line_with(text, "flows="))
        resent = re.search(r"per DATA datagram lost: (\S+)", text)
        rows.append(
            [
                arg("--size"),
                arg("--loss"),
                arg("--carriage"),
                total.get("utilization", NA),
                total.get("delivered", NA),
                total.get("failed", NA),
                resent.group(1) if resent else "",
            ]
        )
    if rows:
        s.lines += md_table(
            ["message bytes", "loss", "carriage", "utilization", "delivered", "failed", "DATA resent per DATA lost"],
            rows,
        )
        s.lines.append("")
        s.lines.append(
            "Issue 24's goals: at 10 % loss, resent ≤ 1.3 × lost and completion within 1.5 × the loss-free "
            "time (compare the 64 KiB rows' utilization); ≥ 10 × the goodput of one IP-fragmented datagram "
            "per message; 1 MiB messages within 5 % of 1 KiB ones' utilization."
        )
        s.lines.append("")
    if "transfer" in s.ran():
        line = last_line_with(out("transfer"), "messages=")
        s.lines.append(f"Real sockets (`transfer`): `{line.strip()}`" if line else f"transfer: {NA}")


def wan_cell(table, name: str) -> Dict[str, str]:
    if table is None:
        return {}
    header, rows = table
    for row in rows:
        if row and row[0].replace(" ", "") == name.replace(" ", ""):
            return {header[i]: row[i] if i < len(row) else "" for i in range(len(header))}
    return {}


# --- real sockets under loss


def section_lossy(s: Section) -> None:
    rows = []
    for kind, label, target in (
        ("lossy_default", "default: 10 % loss, 5 % duplication, 0-5 ms delay", "retransmissions ≤ 1.3 × drops"),
        ("lossy_jitter", "`--loss 0 --duplicate 0 --delay-ms 5` (delay only)", "≤ 20 retransmissions"),
    ):
        runs = [kv(last_line_with(out(n), "sent=")) for n in s.ran() if n.startswith(kind + ".")]
        if not runs:
            continue
        retx = [number(r.get("retransmissions")) for r in runs]
        drops = [number(r.get("relay_dropped")) for r in runs]
        spurious = [number(r.get("spurious")) for r in runs]
        ok = len(runs)
        verdicts = [last_line_with(out(n), "sent=").strip().endswith("OK") for n in s.ran() if n.startswith(kind + ".")]
        per_drop = [ratio(a, b, 3) for a, b in zip(retx, drops)]
        rows.append(
            [
                label,
                str(len(runs)),
                f"{sum(verdicts)} of {ok}",
                span(retx),
                span(spurious),
                span(drops),
                span(per_drop, 2) if kind == "lossy_default" else "",
                span([number(r.get("elapsed_s")) for r in runs], 2),
                f"{target} (issue 19)",
            ]
        )
    s.lines += md_table(
        [
            "relay",
            "runs",
            "every message delivered and received once",
            "DATA retransmissions",
            "spurious",
            "relay drops",
            "retransmissions ÷ drops",
            "seconds",
            "target",
        ],
        rows,
    )


def netns_runs(text: str) -> Tuple[Dict[str, str], List[Dict[str, str]]]:
    total = kv(last_line_with(text, "echo_client, all runs:"))
    runs = [kv(line) for line in text.splitlines() if line.startswith("run ")]
    return total, runs


def section_netns(s: Section) -> None:
    rows = []
    kcp_rows = []
    for loss, target in (("10", "≤ 0.3, and no slower than tokio_kcp"), ("0", "≤ 0.005")):
        name = f"netns_{loss}"
        if name not in s.ran():
            continue
        text = out(name)
        total, runs = netns_runs(text)
        rows.append(
            [
                f"{loss} %",
                str(len(runs)),
                span([number(r.get("delivered")) for r in runs]),
                span([number(r.get("failed")) for r in runs]),
                span([number(r.get("wall_s")) for r in runs], 2),
                total.get("retransmissions", NA),
                total.get("spurious", NA),
                f"**{total.get('retx_per_msg', NA)}**",
                f"{target} (issue 19)",
            ]
        )
        cmp_rows = compare_rows(compare_table(text, "== compare"))
        g, k = cmp_rows.get("gtudp-tokio", {}), cmp_rows.get("tokio_kcp", {})
        kcp_rows.append(
            [
                f"{loss} %",
                fmt(g.get("rate")),
                fmt(g.get("retx")) if g.get("retx") is not None else NA,
                fmt(k.get("rate")),
                fratio(g.get("rate"), k.get("rate")),
                g.get("counts") or NA,
                k.get("counts") or NA,
            ]
        )
    s.lines.append(
        "A network namespace whose loopback drops the given share of UDP datagrams (nftables, both directions, "
        "`gso_max_segs 1`); `echo_client --oneway --concurrency 1024` against `echo_server --sink`, 64 B."
    )
    s.lines.append("")
    s.lines += md_table(
        [
            "loss",
            "runs",
            "delivered",
            "failed",
            "wall s",
            "retransmissions, all runs",
            "spurious",
            "retransmissions per message",
            "target",
        ],
        rows,
    )
    s.lines.append("")
    s.lines.append("The same workload through `compare`, gtudp-tokio beside tokio_kcp (fast profile), median of the runs:")
    s.lines.append("")
    s.lines += md_table(
        ["loss", "gtudp-tokio msgs/s", "its retransmissions", "tokio_kcp msgs/s", "gtudp ÷ kcp", "gtudp-tokio", "tokio_kcp"],
        kcp_rows,
    )


def section_restart(s: Section) -> None:
    text = out("restart")
    client = kv(last_line_with(text, "client:"))
    lost = kv(last_line_with(text, "lost=")).get("lost", NA)
    s.lines += md_table(
        ["sent", "delivered", "failed", "not delivered", "client retransmissions", "client s", "down s", "target (issue 21)"],
        [
            [
                client.get("sent", NA),
                f"**{client.get('delivered', NA)}**",
                f"**{client.get('failed', NA)}**",
                lost,
                client.get("retransmissions", NA),
                client.get("elapsed_s", NA),
                fmt(number(kv(last_line_with(text, "down_s=")).get("down_s")), 2),
                "every message delivered, none failed",
            ]
        ],
    )


def section_sharded(s: Section) -> None:
    titles = {"tokio": "tokio", "tokio_threads": "tokio, a thread per shard (`--shard-threads`)", "mio": "mio"}
    for server, title in titles.items():
        name = f"sharded_{server}"
        if name not in s.ran():
            continue
        text = out(name)
        medians = [kv(line) for line in text.splitlines() if line.startswith("shards=")]
        first = kv(last_line_with(text, "server=") or "")
        s.lines.append(
            f"**{title} server** (peers {first.get('peers', NA)}, window {first.get('window', NA)}, "
            f"{first.get('secs', NA)} s a measurement; medians):"
        )
        s.lines.append("")
        s.lines += md_table(
            ["shards", "server msgs/s", "÷ 1 shard", "server CPU µs per msg", "server + client cores busy", "run queue", "target (issue 21)"],
            [
                [
                    m.get("shards", NA),
                    fmt(number(m.get("msgs_per_s"))),
                    f"**{m.get('ratio', NA)}**",
                    m.get("server_cpu_us_per_msg", NA),
                    m.get("server+client_cores", NA),
                    m.get("server+client_runq", NA),
                    "≥ 1.6 × one shard" if m.get("shards") == "2" else ("CPU per message flat" if m.get("shards") == "4" else ""),
                ]
                for m in medians
            ],
        )
        s.lines.append("")
    s.lines.append(
        "On 2 cores the load generator and the server share the machine: cores busy near 2, or a large run "
        "queue, means the machine set the rate, not the shards. The generator sends each client socket's DATA "
        "and ACKs as segmented sends (UDP GSO) and reads with GRO, so that it takes a small share of the CPU."
    )


def section_floods(s: Section) -> None:
    flood = kv(last_line_with(out("flood"), "flood:"))
    if "flood" in s.ran():
        s.lines.append(
            f"The core alone (`flood`): {flood.get('datagrams', NA)} spoofed DATA "
            f"({last_line_with(out('flood'), 'flood:').split()[1] if flood else NA}: addresses × DATA each), "
            f"**{flood.get('ns_per_datagram', NA)} ns a flood datagram**, amplification {flood.get('amplification', NA)}, "
            f"RSS growth {flood.get('rss_growth', NA)}."
        )
        s.lines.append("")
    text = out("hostile")
    cases = [line for line in text.splitlines() if ": server=" in line]
    rows = []
    for line in cases:
        v = kv(line)
        rows.append(
            [
                line.split(":", 1)[0],
                v.get("server", NA),
                v.get("client", NA),
                v.get("flood", NA),
                v.get("flood_rate", NA),
                v.get("legit_delivered", NA),
                v.get("legit_failed", NA),
                v.get("legit_echoed", NA),
                v.get("legit_elapsed_s", NA),
                v.get("amplification", NA),
                v.get("server_rss_growth_mib", NA),
            ]
        )
    summary = kv(last_line_with(text, "hostile:"))
    if "hostile" in s.ran():
        s.lines.append(
            "Real sockets (`hostile.py`): a flood from spoofed addresses against `echo_server` (sink or echo), "
            "with a legitimate client sending during or after it."
        )
        s.lines.append("")
        s.lines += md_table(
            [
                "case",
                "server",
                "client",
                "flood (addresses × DATA)",
                "flood datagrams/s",
                "legit delivered",
                "failed",
                "echoed",
                "legit s",
                "amplification",
                "server RSS growth MiB",
            ],
            rows,
        )
        s.lines.append("")
        s.lines.append(
            f"All legitimate messages served: **{summary.get('all_legit_served', NA)}**; worst amplification "
            f"{summary.get('worst_amplification', NA)}; worst server RSS growth "
            f"{summary.get('worst_server_rss_growth_mib', NA)} MiB."
        )
    elapsed = [number(kv(line).get("legit_elapsed_s")) for line in cases]
    addresses = [number(kv(line).get("flood", "").split("x")[0]) for line in cases]
    delivered_all = summary.get("all_legit_served") == "True"
    headline(
        f"spoofed floods (up to {fmt(max((a for a in addresses if a is not None), default=None))} addresses)",
        s,
        ("every legitimate message delivered" if delivered_all else f"all legitimate messages served: {summary.get('all_legit_served', NA)}")
        + f", within {fmt(max((e for e in elapsed if e is not None), default=None), 2)} s",
        f"amplification at most {summary.get('worst_amplification', NA)}",
    )


# --- Python


def python_runs(text: str) -> Dict[str, List[Dict[str, Optional[float]]]]:
    """bench.py's lines: 'python ...' in prose, 'rust ...' as key=value."""
    runs: Dict[str, List[Dict[str, Optional[float]]]] = {}
    for line in text.splitlines():
        one_way = re.match(r"(python|rust)\s+one-way burst=(\d+):", line)
        echo = re.match(r"(python|rust)\s+echo x\d+ sequential:", line)
        if not (one_way or echo):
            continue
        who = (one_way or echo).group(1)  # type: ignore[union-attr]
        key = f"{who} burst {one_way.group(2)}" if one_way else f"{who} echo"
        if who == "rust":
            v = kv(line)
            run = {
                "rate": number(v.get("msgs_per_s")),
                "p50": number(v.get("rtt_p50_us")),
                "retx": number(v.get("retransmissions")),
                "rss": number(v.get("rss_mib")),
            }
        else:
            grab = lambda pattern: number(m.group(1)) if (m := re.search(pattern, line)) else None  # noqa: E731
            run = {
                "rate": grab(r": (\d+) (?:msgs|echoes)/s"),
                "p50": grab(r"RTT p50 (\d+) us"),
                "retx": grab(r"retransmissions (\d+)"),
                "rss": grab(r"client max RSS ([\d.]+) MiB"),
            }
        runs.setdefault(key, []).append(run)
    return runs


def section_python(s: Section) -> None:
    text = out("python_bench")
    first = text.splitlines()[0] if text.strip() else ""
    runs = python_runs(text)
    rows = []
    bursts = sorted({int(k.split()[-1]) for k in runs if "burst" in k})
    label = {"python": "Python `GTUDP`", "rust": "Rust blocking socket"}
    for burst in bursts:
        for who in ("python", "rust"):
            r = runs.get(f"{who} burst {burst}", [])
            rows.append(
                [
                    f"{label[who]}, one-way burst of {burst:,}",
                    f"{span([x['rate'] for x in r])} msgs/s",
                    span([x["retx"] for x in r]),
                    span([x["rss"] for x in r], 1),
                ]
            )
    for who in ("python", "rust"):
        r = runs.get(f"{who} echo", [])
        if r:
            rows.append(
                [
                    f"{label[who]}, sequential echo",
                    f"{span([x['rate'] for x in r])} echoes/s, RTT p50 {span([x['p50'] for x in r])} µs",
                    span([x["retx"] for x in r]),
                    span([x["rss"] for x in r], 1),
                ]
            )
    if "python_bench" in s.ran():
        s.lines.append(f"`bench.py` ({first.strip() or NA}); ranges over the rounds; RSS is the measuring process's peak:")
        s.lines.append("")
        s.lines += md_table(["figure", "value", "retransmissions", "RSS MiB"], rows)
        s.lines.append("")
    aio = out("python_aio")
    med = {k: number(v) for k, v in re.findall(r"median (plain|gtudp)\s+p50\s+([\d.]+)", aio)}
    p99 = {k: number(v) for k, v in re.findall(r"median (plain|gtudp)\s+p50\s+[\d.]+ us\s+p99\s+([\d.]+)", aio)}
    if "python_aio" in s.ran():
        s.lines.append("`aio_rtt.py`: sequential echo RTT, `gtudp.aio` against a plain asyncio `DatagramProtocol` echo, alternated:")
        s.lines.append("")
        s.lines += md_table(
            ["asyncio echo", "RTT p50 µs (median of rounds)", "RTT p99 µs", "gtudp ÷ plain", "target (issue 21)"],
            [
                ["plain `DatagramProtocol`", fmt(med.get("plain"), 1), fmt(p99.get("plain"), 1), "", ""],
                ["`gtudp.aio`", fmt(med.get("gtudp"), 1), fmt(p99.get("gtudp"), 1), f"**{fratio(med.get('gtudp'), med.get('plain'))}**", "≤ 1.5"],
            ],
        )
        s.lines.append("")
        tail = last_line_with(aio, "gtudp retransmissions")
        if tail:
            s.lines.append(tail.strip() + ".")
    biggest = bursts[-1] if bursts else None
    py = runs.get(f"python burst {biggest}", [])
    rs = runs.get(f"rust burst {biggest}", [])
    headline(
        f"from Python (`GTUDP`, one-way burst of {fmt(biggest)})",
        s,
        f"{span([x['rate'] for x in py])} msgs/s",
        f"the Rust blocking socket in the same rounds: {span([x['rate'] for x in rs])} msgs/s; `gtudp.aio` echo RTT p50 "
        f"{fratio(med.get('gtudp'), med.get('plain'))} × plain asyncio's",
    )


# --- the page


def header(m: Dict[str, str]) -> List[str]:
    build = [line.strip() for line in (RUN / "build").read_text().splitlines()] if (RUN / "build").exists() else []
    return [
        "# Benchmarks",
        "",
        "<!-- Generated by gtudp-bench/scripts/report.sh from one run; do not edit by hand. "
        "Earlier figures live in git history. -->",
        "",
        "Every figure below comes from one run of `gtudp-bench/scripts/report.sh` on one machine; rerun it to "
        "regenerate this page and the README's figures. What the figures mean and the limits they show: "
        "[docs/performance.md](docs/performance.md).",
        "",
        "| | |",
        "|---|---|",
        f"| date | {m.get('date', NA)} |",
        f"| commit | {m.get('commit', NA)} |",
        f"| mode | {m.get('mode', NA)} (run time {fmt(number(m.get('seconds')))} s, of which building {fmt(number((RUN / 'build_seconds').read_text() if (RUN / 'build_seconds').exists() else None))} s) |",
        f"| machine | {m.get('nproc', NA)} cores, {m.get('cpu', NA)}, kernel {m.get('kernel', NA)} |",
        f"| toolchain | {m.get('rustc', NA)}; {m.get('python', NA)} |",
        f"| socket buffers | `net.core.rmem_default` / `rmem_max` {m.get('rmem', NA)} |",
        f"| load average (1, 5, 15 min) | {m.get('load_start', NA)} at the start, {m.get('load_end', NA)} at the end |",
        "",
        "The machine may be shared: other work (builds, tests) can run beside a measurement, which is why "
        "each records the load average at its start and end, and why ratios to a peer measured in the same "
        "run mean more than absolute rates. Each measurement ran under `flock /tmp/gtudp-timing.lock`, so "
        "no two timings overlapped. Everything runs over loopback, both ends on the same cores. Built once with:",
        "",
        "```sh",
        *build,
        "```",
        "",
    ]


SECTIONS: List[Tuple[str, str, List[str], Callable[[Section], None]]] = [
    (
        "One-way throughput beside raw UDP, laminar and KCP",
        "N messages one way over loopback in one process: gtudp-tokio (each message confirmed) beside raw UDP "
        "sockets, laminar (reliable unordered) and tokio_kcp, each checked for exactly-once delivery.",
        ["compare_256", "compare_1024"],
        section_compare,
    ),
    (
        "A sustained stream",
        "One pair streaming 64 B messages one way at 1,024 in flight, a long run beside a short burst and a raw "
        "UDP blast in the same invocation: a cliff past a table bound would show as a lower sustained rate. "
        "Each burst run is followed at once by a sustained one, so that the ratio is taken pair by pair, "
        "between runs made seconds apart (a shared machine's speed drifts by more than the target's margin "
        "within a minute); the medians' ratio is given beside it.",
        ["sustained", "oneway_100k"],
        section_sustained,
    ),
    (
        "Echo",
        "Echoes of 64 B through an in-process echo server, 1 and 64 in flight, each gtudp socket beside the "
        "plain socket it is built on (gtudp-tokio beside `tokio::net::UdpSocket`, the blocking gtudp-mio "
        "socket beside `std::net::UdpSocket`), alternated in rounds; the median round.",
        ["echo", "echo_spin", "echo_trace_tokio", "echo_trace_raw-tokio", "echo_trace_blocking", "echo_trace_raw-std"],
        section_echo,
    ),
    (
        "The core alone",
        "The sans-IO `Endpoint` pair with no sockets: 64 messages through DATA → RECV → ACK, and the same with a "
        "million identities remembered (criterion).",
        ["criterion"],
        section_core,
    ),
    (
        "Cost per message against run length",
        "One pair at 500,000 messages per virtual second for 10⁴ to 10⁷ messages, and 10⁴ peers × 100 messages: "
        "the cost per message must stay flat as the receiver's memory crosses every table bound.",
        ["curve"],
        section_curve,
    ),
    (
        "Instructions per message",
        "Instructions and simulated last-level cache misses per message through one pair (cachegrind): the "
        "same on a busy or a quiet machine, so it compares commits exactly.",
        ["instructions", "stages", "server_instructions"],
        section_instructions,
    ),
    (
        "Lossy and long paths in virtual time",
        "Saturating flows over one simulated bottleneck (the `wan` example, seed 1) in virtual time: "
        "deterministic, the same on any machine. Each cell's goal is issue 19's.",
        ["wan_matrix", "wan_plot"],
        section_wan,
    ),
    (
        "Large messages",
        "Messages larger than one datagram (issue 24): one datagram per message as large as the message, one "
        "datagram in 1,480-byte IP fragments each lost on its own, or the large-message extension's fragments, "
        "each confirmed and resent alone (`wan --carriage`, virtual time, 20 ms, 100 Mbit/s, seed 1); then the "
        "`transfer` example on real sockets.",
        ["wan_large_1", "wan_large_2", "wan_large_3", "wan_large_4", "wan_large_5", "transfer"],
        section_large,
    ),
    (
        "Loss, duplication and delay through a relay",
        "`lossy_demo`: 2,000 messages through a UDP relay on loopback that drops, duplicates and delays, each "
        "delivered exactly once; DATA retransmissions beside the relay's drops.",
        [n for n in ("lossy_default.1", "lossy_default.2", "lossy_default.3", "lossy_jitter.1", "lossy_jitter.2", "lossy_jitter.3")],
        section_lossy,
    ),
    (
        "Real loss in a network namespace",
        "One-way messages at 1,024 in flight where the kernel drops datagrams at random (the script's "
        "arguments: loss %, messages, runs).",
        ["netns_10", "netns_0"],
        section_netns,
    ),
    (
        "A server restarted on the same port",
        "A sink server `kill -9`ed during a one-way stream at 1,024 in flight and restarted on the same port "
        "(the script's arguments: messages, seconds before the kill, seconds down).",
        ["restart"],
        section_restart,
    ),
    (
        "A sharded server",
        "A sink server with 1, 2 and 4 SO_REUSEPORT shards (the script's default) driven by `many_peers` "
        "(256 client addresses), shard counts alternated.",
        ["sharded_tokio", "sharded_tokio_threads", "sharded_mio"],
        section_sharded,
    ),
    (
        "Spoofed floods",
        "DATA from spoofed addresses that never answer, garbage and forged RECV/ACK: what it costs the core, and "
        "whether a legitimate client is still served.",
        ["flood", "hostile"],
        section_floods,
    ),
    (
        "Python",
        "The `gtudp` module (blocking `GTUDP`) beside the Rust blocking socket it is built on, and `gtudp.aio` "
        "beside a plain asyncio echo.",
        ["python_bench", "python_aio"],
        section_python,
    ),
]


def readme_table() -> List[str]:
    lines = ["| what | gtudp | beside |", "|---|---|---|"]
    for what, anchor, ours, beside in README_ROWS:
        lines.append(f"| [{what}]({anchor}) | {ours} | {beside} |")
    return lines


def replace_readme(path: Path, m: Dict[str, str]) -> None:
    text = path.read_text()
    begin, end = "<!-- figures:begin -->", "<!-- figures:end -->"
    if begin not in text or end not in text:
        print(f"report.py: {path} has no {begin} ... {end} markers; left unchanged", file=sys.stderr)
        return
    body = [
        begin,
        f"From one run of `gtudp-bench/scripts/report.sh` ({m.get('date', NA)}, commit {m.get('commit', NA)}, "
        f"{m.get('nproc', NA)} cores, over loopback unless noted); each links to its command and full table in "
        "`BENCHMARKS.md`.",
        "",
        *readme_table(),
        end,
    ]
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + "\n".join(body) + tail)


def main() -> int:
    global RUN, PAGE_DIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    RUN = args.run
    PAGE_DIR = args.output.resolve().parent
    m = meta()
    lines = header(m)
    toc = []
    body: List[str] = []
    for title, what, names, render in SECTIONS:
        section = Section(title, what, names)
        body += section.render(render)
        toc.append(f"- [{title}](#{slug(title)})")
    lines += toc + [""] + body
    page = "\n".join(lines).rstrip() + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page)
    if args.readme:
        replace_readme(args.readme, m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
