"""`octobot-signals`: replay a journal, run the hub, the demo, the benchmark, build and check the package."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from .args import UsageError

# subcommand -> (module, add-arguments function, command function, help)
_SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "replay": (".replay", "add_replay_arguments", "replay_command",
               "dry-run a strategy journal against a portfolio on an offline simulated exchange"),
    "follow": (".follow", "add_follow_arguments", "follow_command",
               "paper-trade a strategy live: the mode on an offline simulated exchange, fed by a hub"),
    "hub": ("..hub.cli", "add_hub_arguments", "hub_command", "run the self-hostable strategy hub"),
    "demo": (".demo", "add_demo_arguments", "demo_command",
             "the whole loop offline: embedded hub, a publishing leader, following bots"),
    "bench": (".bench", "add_bench_arguments", "bench_command", "latency, fan-out and catch-up benchmark"),
    "chaos": (".chaos", "add_chaos_arguments", "chaos_command",
              "kill hubs and followers, cut links, re-send: count lost, duplicated, gapped, reordered signals"),
    "package": (".package_cmd", "add_package_arguments", "package_command",
                "build the OctoBot tentacles package zip (with a ready copy-trading profile)"),
    "doctor": (".doctor", "add_doctor_arguments", "doctor_command",
               "check that a bot folder loads this RemoteTradingSignalsTradingMode, not OctoBot's stock one"),
    "mosquitto-config": (".mosquitto_cmd", "add_mosquitto_arguments", "mosquitto_command",
                         "write a Mosquitto configuration so stock OctoBot bots follow this hub's strategies over MQTT"),
}


def build_parser(only: str | None = None,
                 ) -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    """only: import just that subcommand's module (the others are listed, not loaded), so that e.g.
    `octobot-signals hub` never imports the OctoBot stack that replay, demo and bench need."""
    parser = argparse.ArgumentParser(prog="octobot-signals", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}
    for name, (module_name, add_args, command, help_text) in _SUBCOMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=help_text)
            continue
        try:
            module = importlib.import_module(module_name, package=__package__)
        except ImportError as err:  # a broken optional part must not take the other commands down
            subparsers.add_parser(name, help=f"(unavailable: {err})")
            continue
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        getattr(module, add_args)(subparser)
        commands[name] = getattr(module, command)
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    first = next((arg for arg in arguments if not arg.startswith("-")), None)
    parser, commands = build_parser(first if first in _SUBCOMMANDS else None)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command not in commands:
        print(f"octobot-signals {args.command}: this command is unavailable in this install", file=sys.stderr)
        return 2
    try:
        return commands[args.command](args)
    except UsageError as err:
        print(f"octobot-signals {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
