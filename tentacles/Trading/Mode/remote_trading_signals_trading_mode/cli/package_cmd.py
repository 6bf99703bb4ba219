"""`octobot-signals package --output DIR`: the OctoBot tentacles package zip.

Layout (what octobot-tentacles-manager extracts: members under `reference_tentacles/<type>/...`
or `reference_tentacles/profiles/...`, everything else is ignored):
    reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/   what a bot runs: the
        mode, the subpackages it imports (core/, feed/, follower/: the tentacles manager copies a
        tentacle folder recursively, so they are kept on install), config/, resources/, the
        tentacle's tests/ (they replace the stock mode's files of the same folder, see cli/doctor.py)
        and simulator/, the offline exchange those tests run the mode on (a bot's own code never imports it).
        hub/, cli/, demo/, bench/, chaos/ and local_exchange/ stay in the pip-installed project: a bot never
        imports them.
    reference_tentacles/Services/Services_bases/octobot_signals_service/    the hub account card of
        OctoBot's web UI (Accounts -> Interfaces), from service/: a second tentacle with its own
        metadata.json (OctoBot lists a Services tentacle's class under "Add a new interface"; it needs
        no activation). It imports the mode tentacle's feed/ lazily, by its installed name.
    reference_tentacles/profiles/octobot_signals_copy_trading/                the ready profile
    reference_tentacles/profiles/default/        only with --default-profile (a bare OctoBot
        without OctoBot-Tentacles has no default profile and needs one to start)
Install: `OctoBot tentacles --install --all --location DIR/octobot-signals-tentacles-<version>.zip`.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..core import mode_config, profile_zip
from .args import UsageError

TENTACLE_TYPE_PATH = ("Trading", "Mode")
ARCHIVE_ROOT = "reference_tentacles"
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
# the strategy hub, the command line, the demo, the benchmarks and the chaos run: pip-side tools, never imported
# by a bot (simulator/ is shipped: the tentacle's own tests/ run the mode on it)
PIP_ONLY_DIRS = frozenset({"hub", "cli", "demo", "bench", "chaos", "local_exchange"})
# the Services tentacle (the web UI's hub account card): shipped as its own tentacle folder, not in the mode's
SERVICE_DIR = "service"
SERVICE_TYPE_PATH = ("Services", "Services_bases")
SERVICE_MODULE = "octobot_signals_service"
# Fixed timestamps: the same sources always give the same zip bytes.
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def package_folder() -> Path:
    """The tentacle folder: this package's root (`octobot_signals` is the tentacle folder)."""
    return Path(__file__).resolve().parents[1]


def package_version(folder: Path) -> str:
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the tentacle's metadata.json in {folder}: {err}") from None
    version = metadata.get("version")
    if not isinstance(version, str) or not version:
        raise UsageError(f"{folder / 'metadata.json'}: missing 'version'")
    return version


def iter_package_files(folder: Path, skipped_dirs: frozenset[str] = PIP_ONLY_DIRS | {SERVICE_DIR}
                       ) -> Iterator[tuple[Path, str]]:
    """(file, path relative to the tentacle folder) for every shipped file, sorted; caches and the
    pip-only (and separately shipped) top-level folders excluded."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in _SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if len(relative.parts) > 1 and relative.parts[0] in skipped_dirs:
            continue
        if path.name.endswith(_SKIPPED_SUFFIXES):
            continue
        yield path, relative.as_posix()


def _write(archive: zipfile.ZipFile, member: str, content: bytes) -> None:
    info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, content)


def build_package(output_dir: Path, *, default_profile: bool = False, strategy: dict | None = None,
                  source: Path | None = None) -> Path:
    """Writes the package zip into output_dir and returns its path."""
    folder = source or package_folder()
    for required in ("__init__.py", "metadata.json"):
        if not (folder / required).is_file():
            raise UsageError(f"{folder} is not a tentacle folder (missing {required})")
    version = package_version(folder)
    module = folder.name if source else "remote_trading_signals_trading_mode"
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"octobot-signals-tentacles-{version}.zip"
    tentacle_root = "/".join((ARCHIVE_ROOT, *TENTACLE_TYPE_PATH, module))
    profile_names = [profile_zip.PACKAGED_PROFILE_NAME] + ([profile_zip.DEFAULT_PROFILE_NAME] if default_profile else [])
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, relative in iter_package_files(folder):
            # the default config comes from the one builder every shipped config comes from
            content = mode_config.default_file_text().encode() if relative == mode_config.CONFIG_FILE \
                else path.read_bytes()
            _write(archive, f"{tentacle_root}/{relative}", content)
        service_folder = folder / SERVICE_DIR
        if (service_folder / "metadata.json").is_file():
            service_root = "/".join((ARCHIVE_ROOT, *SERVICE_TYPE_PATH, SERVICE_MODULE))
            for path, relative in iter_package_files(service_folder, frozenset()):
                content = path.read_bytes()
                if relative == "metadata.json":  # one version for both tentacles: the package's
                    content = (json.dumps({**json.loads(content), "version": version}, indent=2) + "\n").encode()
                _write(archive, f"{service_root}/{relative}", content)
        with tempfile.TemporaryDirectory(prefix="octobot-signals-profile-") as tmp:
            for name in profile_names:
                profile_dir = profile_zip.build_package_profile_dir(Path(tmp) / name, name=name, strategy=strategy)
                for path in sorted(p for p in profile_dir.rglob("*") if p.is_file()):
                    relative = path.relative_to(profile_dir).as_posix()
                    _write(archive, f"{ARCHIVE_ROOT}/profiles/{name}/{relative}", path.read_bytes())
    partial.replace(target)  # never leave a half-written zip under the final name
    return target


def add_package_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="folder to write octobot-signals-tentacles-<version>.zip into (created if missing)")
    parser.add_argument("--default-profile", action="store_true",
                        help="also ship a 'default' profile, for a bare OctoBot without OctoBot-Tentacles "
                             "(on a bot that has one, it replaces that profile's tentacle activation)")
    parser.add_argument("--exchange", default="binance", help="exchange of the packaged profile (default binance)")
    parser.add_argument("--exchange-type", choices=("spot", "future"), default="spot",
                        help="exchange type of the packaged profile (default spot)")
    parser.add_argument("--pairs", default=None,
                        help="comma-separated pairs of the packaged profile (default BTC/USDT, "
                             "or BTC/USDT:USDT for futures)")


def package_command(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {args.output}: exists and is not a folder")
    default_pair = "BTC/USDT:USDT" if args.exchange_type == "future" else "BTC/USDT"
    pairs = [pair.strip() for pair in (args.pairs or default_pair).split(",") if pair.strip()]
    strategy = {**profile_zip.PACKAGED_STRATEGY, "pairs": pairs, "exchange": args.exchange,
                "exchange_type": args.exchange_type}
    try:
        profile_zip.profile_config(strategy, profile_name="check", profile_id="check", description="")
        target = build_package(output, default_profile=args.default_profile, strategy=strategy)
    except profile_zip.ProfileError as err:
        raise UsageError(f"packaged profile: {err}") from None
    except OSError as err:
        raise UsageError(f"--output {args.output}: {err.strerror or err}") from None
    print(target)
    return 0
