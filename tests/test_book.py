"""The book builds offline into _build/html, and a real browser renders its pages.

The build (tools/build_book.py) fails on any Sphinx warning: broken internal links, pages missing
from the table of contents, a code cell that raises. Then headless Chromium loads every page from
a local HTTP server at 1280x1000, with `tests/page_metrics.js` injected: it measures what a reader
sees (overflowing code and outputs, page height, `<Figure size` texts, broken local images, the
first section after Prerequisites) and writes it into the DOM, which the tests read.

Chromium is Debian's `chromium`; CI installs it (.ci/run) and sets D2L_REQUIRE_BROWSER=1 so a
missing browser fails instead of skipping.
"""

from __future__ import annotations

import functools
import html as html_lib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
PAGES = ["book/intro", "book/setup", "book/tasks", "book/results", "book/benchmarks",
         "book/time_budget", "book/references"] + [
    f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


@pytest.fixture(scope="session")
def built_book() -> Path:
    result = subprocess.run([sys.executable, "tools/build_book.py"], cwd=ROOT,
                            capture_output=True, text=True)
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    problems = [line for line in log.splitlines() if "WARNING" in line and "Kernel is running"
                not in line or "ERROR" in line]
    assert result.returncode == 0, "book build failed:\n" + "\n".join(problems or [log[-4000:]])
    return HTML


def test_every_page_is_built(built_book):
    missing = [page for page in PAGES if not (built_book / f"{page}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"


def test_chapter_pages_have_colab_and_download_buttons(built_book):
    from tools.sync_badges import repository

    repo, branch = repository()
    for stem in (p.stem for p in (ROOT / "notebooks").glob("*.ipynb")):
        html = (built_book / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")
        launch = f"colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{stem}.ipynb"
        assert launch in html, f"{stem}: no Colab badge/launch link to {launch}"
        assert f"_sources/notebooks/{stem}.ipynb" in html, f"{stem}: no notebook download"


def test_internal_links_resolve(built_book):
    broken = []
    for page in built_book.rglob("*.html"):
        if "_static" in page.parts:
            continue  # theme templates, not pages
        text = page.read_text(encoding="utf-8", errors="replace")
        for href in re.findall(r'(?:href|src)="([^"#?]+)', text):
            if re.match(r"^[a-z]+:", href) or href.startswith("//"):
                continue  # external
            if not (page.parent / href).resolve().exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:20])


METRICS_SCRIPT = (ROOT / "tests" / "page_metrics.js").read_text(encoding="utf-8")


class _LoggingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book, logs every request, and injects the page-metrics script into
    `?measure` requests of HTML pages."""

    requested: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        type(self).requested.append(self.path)

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path, _, query = self.path.partition("?")
        if query != "measure" or not path.endswith(".html"):
            return super().do_GET()
        page = Path(self.directory) / path.lstrip("/")
        body = page.read_text(encoding="utf-8").replace(
            "</body>", f"<script>{METRICS_SCRIPT}</script></body>").encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log_message("%s", self.path)


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(_LoggingHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("D2L_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed: the browser check runs in CI (.ci/run)")
    return path


class Browser:
    """One headless Chromium for the module's pages, driven over the DevTools protocol on a pipe
    (`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4), so
    the browser starts once instead of once per page. Each page loads in a fresh 1280x1000 tab,
    with the cache off: every page fetches its images, as on a first visit."""

    TIMEOUT_S = 120

    def __init__(self, profile: Path):
        import fcntl

        child_reads, self._to_browser = os.pipe()
        self._from_browser, child_writes = os.pipe()
        # the child's ends above 9, so moving them to 3 and 4 overwrites neither (bash, not
        # sh: dash redirects one-digit descriptors only)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (child_reads, child_writes)]
        self._process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{high[0]} 4>&{high[1]}', chromium(), *CHROMIUM_FLAGS,
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=high, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (child_reads, child_writes, *high):  # only the browser holds its ends now
            os.close(fd)
        self._buffer, self._next_id, self._events = b"", 0, []

    def _read(self) -> dict:
        """The browser's next message (a reply or an event)."""
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], self.TIMEOUT_S)
            assert ready, f"no message from chromium in {self.TIMEOUT_S} s"
            chunk = os.read(self._from_browser, 1 << 16)
            assert chunk, f"chromium exited ({self._process.poll()})"
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result; events that arrive first are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while (reply := self._read()).get("id") != self._next_id:
            self._events.append(reply)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def _wait_for(self, event: str, session: str) -> None:
        """Until the browser has sent `event` for `session`."""
        while not any(e.get("method") == event and e.get("sessionId") == session
                      for e in self._events):
            self._events.append(self._read())

    def render(self, url: str) -> str:
        """The DOM once `url` has loaded (images included) and its load handlers have run."""
        target = self._send("Target.createTarget", url="about:blank")["targetId"]
        session = self._send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self._send("Emulation.setDeviceMetricsOverride", session, width=1280, height=1000,
                   deviceScaleFactor=1, mobile=False)
        self._send("Network.enable", session)
        self._send("Network.setCacheDisabled", session, cacheDisabled=True)  # as a first visit
        self._send("Page.enable", session)
        self._events.clear()
        self._send("Page.navigate", session, url=url)
        self._wait_for("Page.loadEventFired", session)
        self._send("Runtime.evaluate", session, awaitPromise=True,  # the load handlers' turn
                   expression="new Promise(done => setTimeout(done, 100))")
        dom = self._send("Runtime.evaluate", session, returnByValue=True,
                         expression="document.documentElement.outerHTML")["result"]["value"]
        self._send("Target.closeTarget", targetId=target)
        return dom

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    browser = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


def visible_text(dom: str) -> str:
    dom = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_browser_renders_landing_page(server, browser):
    text = visible_text(browser.render(f"{server}/book/intro.html"))
    for expected in ("Fine-tuning BERT on GLUE and NLI", "prefix tuning", "Open in Colab",
                     "Every method on one backbone"):
        assert expected.lower() in text.lower(), f"landing page lacks {expected!r}"


def page_metrics(server: str, page: str, browser: Browser) -> dict:
    """What tests/page_metrics.js measured on `page` in the browser."""
    dom = browser.render(f"{server}/{page}.html?measure")
    match = re.search(r'<pre id="d2l-page-metrics"[^>]*>(.*?)</pre>', dom, re.S)
    assert match, f"{page}: the page-metrics script wrote nothing"
    return json.loads(html_lib.unescape(match.group(1)))


MAX_CHAPTER_HEIGHT = 15_000  # px at 1280x1000
LOGISTICS = re.compile(r"time|hardware|setting|parameter|profile|install|setup|colab", re.I)


def test_every_page_reads_well_in_a_browser(server, browser):
    """Nothing cut off, every diagram and image shown, chapters not too long and teaching first."""
    problems = []
    for page in PAGES:
        metrics = page_metrics(server, page, browser)
        for element in metrics["overflowing"]:
            problems.append(f"{page}: <{element['tag']}> {element['scroll']} px wide in a "
                            f"{element['client']} px box: {element['text'][:60]!r}")
        if metrics["figure_text"]:
            problems.append(f"{page}: shows '<Figure size ...>' instead of a diagram")
        problems += [f"{page}: broken image {src}" for src in metrics["broken_images"]]
        if page.startswith("notebooks/"):
            if metrics["height"] > MAX_CHAPTER_HEIGHT:
                problems.append(f"{page}: {metrics['height']:,} px tall (at most "
                                f"{MAX_CHAPTER_HEIGHT:,})")
            first = metrics["first_section"] or ""
            if not first or LOGISTICS.search(first):
                problems.append(f"{page}: the first section after Prerequisites is {first!r}, "
                                "not teaching")
    assert not problems, "\n".join(problems)


def test_chapter_pages_say_where_their_outputs_come_from(built_book):
    """Each chapter page names the run its outputs come from; a page whose executed copy is out
    of date (or missing) says so at the top, and only then."""
    import nbformat

    from tools.executed_copies import executed_path, is_stale

    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = visible_text((built_book / "notebooks" / f"{notebook.stem}.html").read_text(
            encoding="utf-8"))
        copy = executed_path(notebook)
        stale = not copy.is_file() or is_stale(nbformat.read(notebook, as_version=4),
                                                nbformat.read(copy, as_version=4))
        notice = ("These outputs come from an earlier version" in text
                  or "has not been run by the book yet" in text)
        assert notice == stale, (f"{notebook.stem}: outputs {'stale' if stale else 'fresh'} "
                                 f"but the page {'lacks' if stale else 'shows'} the notice")
        if copy.is_file():
            assert "The outputs on this page" in text, f"{notebook.stem}: no provenance line"
            line = text.split("The outputs on this page")[1].split("see Setup")[0]
            assert "tiny" not in line.lower() and " profile" in line, line


def test_no_tiny_profile_output_on_the_website(built_book):
    """No output of a tiny-profile run anywhere (the phrases may appear in code, not in what it
    printed)."""
    code = re.compile(r'(?s)<div class="highlight-ipython3 notranslate"><div class="highlight">'
                      r"<pre>.*?</pre>")
    for page in PAGES:
        html = (built_book / f"{page}.html").read_text(encoding="utf-8")
        text = visible_text(code.sub(" ", html))
        for phrase in ("Profile: TINY", "tiny smoke run", "smoke test"):
            assert phrase not in text, f"{page} shows tiny-profile output: {phrase!r}"


def test_browser_renders_a_chapter_with_its_plot(server, browser):
    chapter = "notebooks/03_mnli_freeze_lora_prefix.html"
    _LoggingHandler.requested.clear()
    dom = browser.render(f"{server}/{chapter}")
    text = visible_text(dom)
    assert "Chapter 3" in text and "LoRA" in text
    plots = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
    assert plots, "the chapter shows no plot"
    fetched = [path for path in _LoggingHandler.requested if path.endswith(".png")]
    assert fetched, f"the browser did not load any of the chapter's plots {plots[:3]}"
    image = HTML / "notebooks" / plots[0]
    assert image.resolve().is_file() and image.stat().st_size > 5_000


def test_results_page_shows_the_committed_records(built_book):
    """The Results page lists every run of chapters 1 to 5 by name: its cells read the records at
    every build (a cache keyed on their code once kept an earlier build's records)."""
    from d2l_utils.pages.records import committed_records, run_name

    text = visible_text((built_book / "book" / "results.html").read_text(encoding="utf-8"))
    for chapter in range(1, 6):
        for record in committed_records(chapter=chapter):
            assert run_name(record) in text, f"chapter {chapter}: {run_name(record)} missing"


def test_time_page_shows_each_chapters_measured_time(built_book):
    """The Time budget page shows the minutes each chapter's records hold, also when an earlier
    build exists (Sphinx once skipped the unchanged page and kept an earlier run's times)."""
    from d2l_utils.pages.records import chapter_time_minutes

    text = visible_text((built_book / "book" / "time_budget.html").read_text(encoding="utf-8"))
    for chapter in range(1, 7):
        minutes = chapter_time_minutes(chapter)
        if minutes is not None:
            assert re.search(rf"\b{chapter}\s+{minutes:.0f} min\b", text), (chapter, minutes)
