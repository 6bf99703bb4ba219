"""`octobot-signals chaos`: publish signals while hubs, followers, links and PostgreSQL fail; count what broke."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.handlers
import queue
import random
import shutil
import sys
import tempfile
from pathlib import Path

from .args import UsageError

MAX_SIGNALS = 100_000
MAX_FOLLOWERS = 10  # each follower is a whole OctoBot stack in its own process
MAX_REPLICAS = 8

EPILOG = """\
What runs: hub replicas (`python -m octobot_signals.hub`, child processes; with postgresql all on one
throwaway PostgreSQL 15 on a Unix socket), followers (`octobot-signals follow --json`, child processes: the
real mode on an offline simulated exchange, state on disk) and the leader (the real PublisherClient and its
durable outbox, in this process). Every client reaches the hubs through its own TCP proxy on 127.0.0.1.
The leader publishes alternately a resting buy limit (0.1 %) and its cancel. Meanwhile the run SIGKILLs and
restarts followers and hub replicas, cuts and restores links, re-sends acknowledged messages (same u: the
ack must carry the first q) and, with postgresql, stops PostgreSQL (-m immediate) and starts it again.
Faults stop at the last ack; the convergence time runs from that ack until every follower printed the last q.
A follower's stall: a stretch during which the hub had acked messages it had not printed and it printed
nothing (the longest one is reported; the follower client's reconnect backoff shows here).

Counters (all must be 0; from the outbox, the hub's journal read back at the end, the re-sends, and every
line each follower printed across all its runs):
  lost          an outbox row never acked; an acked u missing from the journal; per follower, a journaled q
                no run of it printed a line for
  duplicates    a u journaled under two q, or a re-send acked with another q; an ack q the journal holds for
                another u; per follower, an order content applied (created/edited/cancelled) twice across its
                runs, or an order open at the end that no line of its last run placed
  gaps          a q missing from the journal's 1..last q; per follower, a line for q printed while a lower
                journaled q had no line yet (once per hole: per lowest missing q)
  out_of_order  acks whose q do not follow the outbox's order; per follower, an applied q lower than one it
                already applied
  skipped       a line that neither applies nor recognises an earlier run's work after a kill -9 ("already
                applied", "already copied", "was being copied when the bot stopped"; a cancel whose copy was
                on the in-memory exchange of a killed run)

Exit code 0 when every counter is 0 and the followers converged; 1 otherwise, and also when a hub or follower
exited by itself (a crash: counted, started again) or a fault could not be carried out or undone; 2 on bad
arguments. A failed run keeps its work directory (hub and follower logs, every follower run's lines)."""


def add_chaos_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the hubs' store (default sqlite: one hub process on its data directory)")
    parser.add_argument("--replicas", type=int, default=1, help="hub processes (postgresql only above 1; default 1)")
    parser.add_argument("--signals", type=int, default=1000, help="signals the leader publishes (default 1000)")
    parser.add_argument("--followers", type=int, default=3, help="follower processes (default 3)")
    parser.add_argument("--rate", type=float, default=20.0, help="signals published per second (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random, printed)")
    parser.add_argument("--converge-timeout", type=float, default=120.0, dest="converge_timeout",
                        help="seconds after the last ack before the run gives up on convergence (default 120)")
    parser.add_argument("--break-follower", action="store_true", dest="break_follower",
                        help="test aid: follower-1 loses its data directory at its first kill, as a bot whose disk "
                        "was wiped, and comes back once the hub acked 3 messages it had not printed; the "
                        "counters must then show them lost (exit code 1)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, data) even when the run passes")
    parser.add_argument("--json", action="store_true", help="end with one JSON line: the summary")


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _validate(args: argparse.Namespace) -> None:
    if not 1 <= args.signals <= MAX_SIGNALS:
        raise UsageError(f"--signals must be between 1 and {MAX_SIGNALS}, got {args.signals}")
    if not 1 <= args.followers <= MAX_FOLLOWERS:
        raise UsageError(f"--followers must be between 1 and {MAX_FOLLOWERS}, got {args.followers}")
    if not 1 <= args.replicas <= MAX_REPLICAS:
        raise UsageError(f"--replicas must be between 1 and {MAX_REPLICAS}, got {args.replicas}")
    if args.store == "sqlite" and args.replicas != 1:
        raise UsageError("--store sqlite runs exactly one hub process (one hub process per data directory): "
                         f"--replicas {args.replicas} needs --store postgresql")
    if not 0.1 <= args.rate <= 1000:
        raise UsageError(f"--rate must be between 0.1 and 1000 signals per second, got {args.rate}")
    if not 1 <= args.converge_timeout <= 3600:
        raise UsageError(f"--converge-timeout must be between 1 and 3600 s, got {args.converge_timeout}")


def _print_summary(summary: dict[str, object]) -> None:
    converge = summary["converge_s"]
    _write(f"signals lost {summary['lost']}, duplicate orders {summary['duplicates']}, gaps {summary['gaps']}, "
           f"out-of-order applications {summary['out_of_order']}, skipped {summary['skipped']}")
    _write(f"converged {'NOT within the timeout' if converge is None else f'in {converge} s'} after the last ack "
           f"(last q {summary['last_q']}); longest follower stall {summary['longest_stall_s']} s; "
           f"run took {summary['elapsed_s']} s")
    _write(f"lines recognising an earlier run's work after a kill -9: {summary['recognised_after_restart']}")
    _write(f"faults: {summary['faults']}; re-sends {summary['resends']}; hub starts {summary['hub_starts']}, "
           f"PostgreSQL restarts {summary['postgres_restarts']}, crashes {summary['crashes']}")
    for example in summary["examples"]:  # type: ignore[attr-defined]
        _write(f"  {example}")
    _write("PASS" if summary["ok"] else "FAIL")


def chaos_command(args: argparse.Namespace) -> int:
    _validate(args)
    # imported here: argument errors answer at once, without loading the run's modules
    from ..chaos.pg import unavailable_reason
    from ..chaos.run import ChaosConfig, ChaosRun, history_to_json

    if args.store == "postgresql" and (reason := unavailable_reason()):
        raise UsageError(f"--store postgresql: {reason}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    work_dir = Path(tempfile.mkdtemp(prefix="octobot-signals-chaos-"))
    config = ChaosConfig(store=args.store, replicas=args.replicas, signals=args.signals, followers=args.followers,
                         rate=args.rate, seed=seed, converge_timeout=args.converge_timeout, work_dir=work_dir,
                         break_follower=args.break_follower)
    # the clients' own warnings (link lost, retrying) are the chaos working: into the work dir, not the console
    # (a queue: the file writes happen on the listener's thread, never on the event loop)
    file_handler = logging.FileHandler(work_dir / "chaos.log", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    log_handler = logging.handlers.QueueHandler(records)
    listener = logging.handlers.QueueListener(records, file_handler)
    listener.start()
    logging.getLogger().addHandler(log_handler)
    logging.getLogger().setLevel(logging.INFO)
    run = ChaosRun(config, _write)
    try:
        summary = asyncio.run(run.run())
    except Exception as err:  # the run could not be carried out (a hub that never starts...): not a pass
        _write(f"chaos run aborted: {type(err).__name__}: {err} (logs in {work_dir})")
        return 1
    finally:
        logging.getLogger().removeHandler(log_handler)
        listener.stop()
        file_handler.close()
    _print_summary(summary)
    keep = args.keep or not summary["ok"]
    if keep:
        for follower in run.followers:  # what each follower printed, run by run: the post-mortem's input
            (work_dir / f"{follower.name}.runs.json").write_text(history_to_json(follower.history), encoding="utf-8")
        _write(f"work directory kept: {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.json:
        _write(json.dumps(summary, separators=(",", ":")))
    return 0 if summary["ok"] else 1
