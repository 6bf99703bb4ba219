"""A real browser for the tests: Debian's chromium driven by Playwright, offline.

- never downloads a browser: Playwright launches /usr/bin/chromium (`executable_path`);
- pages on 127.0.0.1 load normally; the public CDNs OctoBot's web UI uses are answered from a local
  npm install of the same packages (.ci/webui_cdn.sh); every other outside request is aborted, so a
  page that needs the internet fails here as it would for an offline user;
- `Journey` runs named steps, keeps what each step saw, and saves a screenshot when a step fails.
"""
from __future__ import annotations

import contextlib
import functools
import mimetypes
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHROMIUM = Path(os.environ.get("OCTOBOT_SIGNALS_CHROMIUM", "/usr/bin/chromium"))
CDN_SCRIPT = REPO / ".ci" / "webui_cdn.sh"
ARTIFACTS = Path(os.environ.get("OCTOBOT_SIGNALS_ARTIFACTS", REPO / ".artifacts"))
# Flags of a headless chromium on a closed network: no background traffic, no sandbox as root, and no
# local-network checks (pages on 127.0.0.1 calling 127.0.0.1).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_INTEGRITY = re.compile(rb"""\s(?:integrity)\s*=\s*(?:"[^"]*"|'[^']*')""", re.IGNORECASE)


def _cdn_rules() -> list[tuple[re.Pattern[str], str]]:
    """CDN URL (host + path) -> path under node_modules; {n} are the pattern's groups."""
    rules = [
        (r"cdn\.jsdelivr\.net/npm/bootstrap@4\.5\.3/(.+)", "bootstrap/{0}"),  # one page asks 4.5.3: 4.6.2 serves
        (r"cdn\.jsdelivr\.net/npm/(@[^/@]+/[^/@]+|[^/@]+)@[^/]+/(.+)", "{0}/{1}"),
        (r"cdnjs\.cloudflare\.com/ajax/libs/toastr\.js/[^/]+/(.+)", "toastr/build/{0}"),
        (r"cdnjs\.cloudflare\.com/ajax/libs/socket\.io/[^/]+/(.+)", "socket.io-client/dist/{0}"),
        (r"cdnjs\.cloudflare\.com/ajax/libs/showdown/[^/]+/(.+)", "showdown/dist/{0}"),
        (r"cdnjs\.cloudflare\.com/ajax/libs/mdb-ui-kit/[^/]+/(.+\.js)", "mdb-ui-kit/js/{0}"),
        (r"cdnjs\.cloudflare\.com/ajax/libs/mdb-ui-kit/[^/]+/(.+\.css)", "mdb-ui-kit/css/{0}"),
        (r"cdn\.plot\.ly/plotly-[0-9.]+\.min\.js", "plotly.js-dist-min/plotly.min.js"),
        (r"cdn\.datatables\.net/[^/]+/js/(.+)", "datatables.net/js/{0}"),
        (r"cdn\.datatables\.net/[^/]+/css/(.+)", "datatables.net-dt/css/{0}"),
        (r"code\.jquery\.com/jquery-[0-9.]+\.min\.js", "jquery/dist/jquery.min.js"),
        (r"code\.jquery\.com/ui/[^/]+/themes/(.+)", "jquery-ui-themes/themes/{0}"),
        (r"code\.jquery\.com/ui/[^/]+/(.+)", "jquery-ui-dist/{0}"),
        (r"use\.fontawesome\.com/releases/v[^/]+/(.+)", "@fortawesome/fontawesome-free/{0}"),
    ]
    return [(re.compile(pattern), target) for pattern, target in rules]


CDN_RULES = _cdn_rules()


@functools.lru_cache(maxsize=1)
def cdn_modules() -> Path:
    """node_modules with the web UI's CDN libraries (installed once by .ci/webui_cdn.sh, then cached)."""
    result = subprocess.run(["bash", str(CDN_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{CDN_SCRIPT} failed ({result.returncode}): {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def cdn_file(url: str, modules: Path) -> Path | None:
    """The local copy of a CDN URL, or None. jsDelivr minifies on the fly: x.min.js falls back to x.js."""
    parts = urlsplit(url)
    key = parts.netloc + parts.path
    for pattern, target in CDN_RULES:
        match = pattern.fullmatch(key)
        if not match:
            continue
        relative = target.format(*match.groups())
        candidates = [relative]
        for suffix in (".min.js", ".min.css"):
            if relative.endswith(suffix):
                candidates.append(relative[: -len(suffix)] + suffix[4:])
        for candidate in candidates:
            path = (modules / candidate).resolve()
            if path.is_file() and modules.resolve() in path.parents:
                return path
        return None
    return None


@dataclass
class Traffic:
    """What the routing did: CDN files served, CDN misses and outside requests aborted."""
    served: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)


async def _route(route: Any, modules: Path | None, traffic: Traffic, strip_integrity: bool) -> None:
    request = route.request
    parts = urlsplit(request.url)
    if parts.scheme in ("data", "blob", "about"):
        await route.continue_()
        return
    host = parts.hostname or ""
    if host in LOCAL_HOSTS:
        if strip_integrity and request.resource_type == "document" and request.method == "GET":
            # the npm copies are not byte-identical to the CDNs' (minified on the fly): the pages'
            # integrity attributes cannot match them, so the browser-side copy of the page drops them.
            # GET only: route.fetch() would re-send a form post without its uploaded files. A page reached
            # by a post's redirect keeps its attributes (Playwright routes only the first request of a
            # redirect chain): open it again with a GET before using its scripts.
            response = await route.fetch()
            body = _INTEGRITY.sub(b"", await response.body())
            await route.fulfill(response=response, body=body)
        else:
            await route.continue_()
        return
    local = cdn_file(request.url, modules) if modules is not None else None
    if local is not None:
        traffic.served.append(request.url)
        content_type = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        await route.fulfill(status=200, body=local.read_bytes(), content_type=content_type,
                            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"})
        return
    (traffic.missing if modules is not None and any(
        p.fullmatch(parts.netloc + parts.path) for p, _ in CDN_RULES) else traffic.aborted).append(request.url)
    await route.abort("internetdisconnected")


@dataclass
class Browser:
    context: Any
    traffic: Traffic


@contextlib.asynccontextmanager
async def browser(*, cdn: bool = False, strip_integrity: bool | None = None,
                  viewport: tuple[int, int] = (1366, 900)) -> AsyncIterator[Browser]:
    """A fresh chromium context (empty profile). cdn=True serves OctoBot's CDN libraries locally."""
    from playwright.async_api import async_playwright  # imported here: only browser tests need it

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} not found: run .ci/webui_cdn.sh (installs Debian's chromium)")
    modules = cdn_modules() if cdn else None
    traffic = Traffic()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                    args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                                 accept_downloads=True)
            await context.route("**/*", lambda route: _route(route, modules, traffic,
                                                             cdn if strip_integrity is None else strip_integrity))
            yield Browser(context, traffic)
            await context.close()
        finally:
            await chromium.close()


@dataclass
class Step:
    name: str
    saw: str = ""
    seconds: float = 0.0
    ok: bool = False


class Journey:
    """Named steps of a user journey; a failing step leaves a screenshot of every open page."""

    def __init__(self, name: str, pages: list[Any] | None = None) -> None:
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        self.pages: list[Any] = pages if pages is not None else []
        self.steps: list[Step] = []
        self.directory = ARTIFACTS / "screenshots" / self.name

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[Step]:
        step = Step(name)
        self.steps.append(step)
        started = time.monotonic()
        try:
            yield step
            step.ok = True
        except BaseException:
            await self.screenshot(f"{len(self.steps):02d}-failed-{name}")
            raise
        finally:
            step.seconds = time.monotonic() - started

    async def screenshot(self, label: str) -> list[Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        saved = []
        for index, page in enumerate(self.pages):
            target = self.directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", label) + f"-{index}.png")
            with contextlib.suppress(Exception):  # a crashed page must not hide the step's own error
                await page.screenshot(path=str(target), full_page=True)
                saved.append(target)
        return saved

    def report(self) -> str:
        lines = [f"journey {self.name}:"]
        for number, step in enumerate(self.steps, 1):
            status = "ok" if step.ok else "FAILED"
            lines.append(f"  {number:2d}. [{status}] {step.name} ({step.seconds:.1f} s): {step.saw}")
        return "\n".join(lines)
