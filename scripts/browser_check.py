#!/usr/bin/env python3
"""Open a self-contained HTML report in headless Chromium and check it rendered.

Usage:
    python3 scripts/browser_check.py PAGE.html --screenshot OUT.png \
        [--width 1280] [--height 2000]

Talks W3C WebDriver to chromedriver over plain HTTP (stdlib only, no selenium)
so CI needs nothing beyond Debian's `chromium` and `chromium-driver` packages.

Prints one JSON object on stdout and exits with
    0  page rendered: no console errors, no broken images, no external requests
    1  one of those checks failed (the JSON says which)
    2  chromium/chromedriver missing, or the browser could not be driven
"""

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HTTP_TIMEOUT = 60  # seconds per WebDriver call, so a hung browser cannot hang CI
STARTUP_TIMEOUT = 30  # seconds for chromedriver to answer /status
READY_TIMEOUT = 60  # seconds for document.readyState == 'complete'
PAGE_LOAD_MS = 50_000  # below HTTP_TIMEOUT so chromedriver gives up first
MAX_SCREENSHOT_HEIGHT = 16_000  # Chromium refuses/garbles much taller captures
INSTALL_HINT = "fix: apt-get install chromium chromium-driver"

CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",  # CI containers usually run as root without user namespaces
    "--disable-gpu",
    "--disable-dev-shm-usage",  # /dev/shm is tiny in Docker
    "--disable-quic",
    "--no-first-run",
    # Keep the browser itself quiet so only the page could cause traffic.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Read-only probe of the loaded page; returns everything in one round trip.
COLLECT_JS = """
const imgs = Array.from(document.images);
return {
  title: document.title,
  tables: document.getElementsByTagName('table').length,
  images: imgs.length,
  broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                     .map(i => i.currentSrc || i.src || i.getAttribute('src') || ''),
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
"""

# Full document height, plus how much of the window is not viewport (so the
# window can be grown until the viewport holds the whole page).
SIZE_JS = """
const d = document.documentElement, b = document.body;
return {
  scroll: Math.max(d.scrollHeight, b ? b.scrollHeight : 0),
  inner: window.innerHeight,
  outer: window.outerHeight,
};
"""


class WebDriverError(Exception):
    """A WebDriver call failed (HTTP error, timeout, or WebDriver error body)."""


def fail_setup(message):
    """Exit 2 with a one-line message: the browser tooling is not usable."""
    print(f"browser_check: {message}", file=sys.stderr)
    sys.exit(2)


def find_binary(env_var, names):
    """Return a path from $env_var or the first of names on PATH, else None."""
    override = os.environ.get(env_var)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port():
    """Ask the kernel for an unused localhost port (small race, fine for CI)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, timeout=HTTP_TIMEOUT):
    """One JSON WebDriver request; returns the response's "value"."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json; charset=utf-8")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        # WebDriver reports errors as 4xx/5xx with a JSON body; surface it.
        try:
            value = json.loads(exc.read()).get("value", {})
            detail = f"{value.get('error')}: {value.get('message', '')}"
        except (ValueError, AttributeError):
            detail = str(exc)
        raise WebDriverError(f"{method} {url} -> {detail.splitlines()[0]}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WebDriverError(f"{method} {url} -> {exc}") from exc
    return payload.get("value")


def wait_for_driver(base, proc):
    """Poll /status until chromedriver is ready, or fail if it died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WebDriverError(f"chromedriver exited with code {proc.returncode}")
        try:
            if (http("GET", f"{base}/status", timeout=5) or {}).get("ready"):
                return
        except WebDriverError:
            pass  # not listening yet
        time.sleep(0.1)
    raise WebDriverError(f"chromedriver not ready after {STARTUP_TIMEOUT}s")


def new_session(base, chromium, width, height, profile_dir):
    """Create a session; returns its id."""
    options = {
        "binary": chromium,
        "args": CHROME_ARGS
        + [f"--window-size={width},{height}", f"--user-data-dir={profile_dir}"],
    }
    caps = {
        "browserName": "chrome",
        "goog:chromeOptions": options,
        # Needed for the browser console log endpoint below.
        "goog:loggingPrefs": {"browser": "ALL"},
    }
    value = http("POST", f"{base}/session", {"capabilities": {"alwaysMatch": caps}})
    return value["sessionId"]


def execute(sess, script):
    """Run synchronous JS in the page and return its result."""
    return http("POST", f"{sess}/execute/sync", {"script": script, "args": []})


def wait_ready(sess):
    """Block until the load event has fired (images etc. settled)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while execute(sess, "return document.readyState") != "complete":
        if time.monotonic() > deadline:
            raise WebDriverError(f"page not complete after {READY_TIMEOUT}s")
        time.sleep(0.1)


def browser_log(sess):
    """Browser console entries via chromedriver's non-W3C log endpoint.

    Recent chromedriver only serves /se/log in W3C mode; older ones use /log.
    """
    last_error = None
    for path in ("se/log", "log"):
        try:
            return http("POST", f"{sess}/{path}", {"type": "browser"}) or []
        except WebDriverError as exc:
            last_error = exc
    raise last_error


def full_page_screenshot(sess, width, out_path):
    """Grow the window to the document height, capture, write PNG; returns height."""
    size = execute(sess, SIZE_JS)
    height = min(int(size["scroll"]), MAX_SCREENSHOT_HEIGHT)
    chrome = max(0, int(size["outer"]) - int(size["inner"]))  # non-viewport px
    http("POST", f"{sess}/window/rect", {"width": width, "height": height + chrome})
    png = base64.b64decode(http("GET", f"{sess}/screenshot"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(png)
    return height


def check_page(sess, page, width, out_path):
    """Load the page, gather the report dict (does not decide pass/fail)."""
    http("POST", f"{sess}/timeouts", {"pageLoad": PAGE_LOAD_MS, "script": PAGE_LOAD_MS})
    http("POST", f"{sess}/url", {"url": page.as_uri()})
    wait_ready(sess)
    info = execute(sess, COLLECT_JS)
    # A self-contained report must not fetch anything; data:/blob: are inline.
    external = [
        name
        for name in info["resources"]
        if not name.startswith(("file:", "data:", "blob:"))
    ]
    errors = [
        entry.get("message", "")
        for entry in browser_log(sess)
        if entry.get("level") == "SEVERE"
    ]
    height = full_page_screenshot(sess, width, out_path)
    return {
        "title": info["title"],
        "tables": info["tables"],
        "images": info["images"],
        "broken_images": info["broken_images"],
        "external_requests": external,
        "console_errors": errors,
        "screenshot": str(out_path),
        "height": height,
    }


def run(page, out_path, width, height):
    """Drive one chromedriver/chromium pair; always cleans up."""
    chromium = find_binary("CHROMIUM", ["chromium", "chromium-browser"])
    driver = find_binary("CHROMEDRIVER", ["chromedriver"])
    missing = [n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p]
    if missing:
        fail_setup(f"{' and '.join(missing)} not found; {INSTALL_HINT}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    profile_dir = tempfile.mkdtemp(prefix="browser_check_profile_")
    proc = subprocess.Popen(
        [driver, f"--port={port}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sess = None
    try:
        try:
            wait_for_driver(base, proc)
            sess = f"{base}/session/{new_session(base, chromium, width, height, profile_dir)}"
        except WebDriverError as exc:
            fail_setup(f"cannot start browser session ({exc}); {INSTALL_HINT}")
        try:
            return check_page(sess, page, width, out_path)
        except WebDriverError as exc:
            fail_setup(f"browser error while checking {page}: {exc}")
    finally:
        if sess:
            try:
                http("DELETE", sess, timeout=15)
            except WebDriverError:
                pass  # the driver is killed next anyway
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile_dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="HTML file to open")
    parser.add_argument("--screenshot", type=Path, required=True, help="output PNG")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()

    page = args.page.resolve()
    if not page.is_file():
        parser.error(f"no such file: {args.page}")

    report = run(page, args.screenshot.resolve(), args.width, args.height)
    print(json.dumps(report, indent=2))
    ok = not (report["console_errors"] or report["broken_images"] or report["external_requests"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
