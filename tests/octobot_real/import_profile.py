"""Runs in the OctoBot 2.1.1 venv with a bot folder as cwd: imports a profile from a URL through
OctoBot's own importer (`octobot_commons.profiles.download_and_install_profile`, the code path of the
web interface's "import from URL" and of OctoBot's TO_DOWNLOAD_PROFILES), then proves that this
importer enforces the profile schema by feeding it an invalid zip. Prints one JSON line.

Usage: python import_profile.py URL [INVALID_PROFILE_ZIP]
"""
from __future__ import annotations

import json
import os
import sys

import octobot.constants as octobot_constants
import octobot_commons.errors as commons_errors
import octobot_commons.profiles as profiles

MODE = "RemoteTradingSignalsTradingMode"


def main(url: str, invalid_zip: str | None) -> None:
    schema = octobot_constants.PROFILE_FILE_SCHEMA
    if not os.path.isfile(schema):
        raise SystemExit(f"profile schema not found at {schema}: the importer would not validate")
    profile = profiles.download_and_install_profile(url, schema)
    if profile is None:
        raise SystemExit("OctoBot's importer refused the profile (see the log above)")
    profile.validate()
    with open(os.path.join(profile.path, "specific_config", f"{MODE}.json"), encoding="utf-8") as handle:
        specific = json.load(handle)
    with open(profile.get_tentacles_config_path(), encoding="utf-8") as handle:
        activation = json.load(handle)["tentacle_activation"]
    invalid_refused = None
    if invalid_zip:
        try:
            profiles.import_profile(invalid_zip, schema, name="invalid_profile")
        except commons_errors.ProfileImportError as err:
            invalid_refused = str(err)
    print(json.dumps({
        "id": profile.profile_id, "name": profile.name, "path": os.path.relpath(profile.path),
        "imported": profile.imported, "origin_url_matches": profile.origin_url == url,
        "config": profile.config, "specific": specific, "activation": activation,
        "invalid_refused": invalid_refused,
        "invalid_left_behind": os.path.isdir(os.path.join("user", "profiles", "invalid_profile")),
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
