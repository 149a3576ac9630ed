"""Drive headless Chromium through ChromeDriver (W3C WebDriver over HTTP) along
a list of steps, for the end-to-end tests of the server-rendered web pages.
Standard library only; needs Debian's `chromium` and `chromium-driver`
(scripts/test-services installs them).

Usage: /usr/bin/python3 tests/support/webdriver_flow.py STEPS.json

STEPS.json is {"steps": [STEP, ...]}; each STEP has "do" plus arguments:
  {"do": "goto", "url": "http://127.0.0.1:PORT/path"}
  {"do": "fill", "css": "input[name=email]", "text": "..."}  clear, then type
  {"do": "click", "css": "button[type=submit]"}   waits for any navigation
  {"do": "submit_form", "css": "form#x"}          clicks the form's submit button
  {"do": "expect_text", "css": "body", "contains": "..."}  visible text
  {"do": "expect_url", "contains": "/inbox"}
  {"do": "expect_absent", "css": "..."}           no element matches
  {"do": "screenshot", "path": "/abs/path.png"}   PNG of the viewport
  {"do": "text", "css": "...", "as": "name"}      record the text as texts[name]
  {"do": "measure", "as": "name"}                 record the page's [width, height] in CSS px
  {"do": "fill_totp", "css": "...", "secret": "name", "shift": 0}  fill the current TOTP
                                                  code of the base32 secret texts[name] (oathtool),
                                                  on a clock `shift` seconds ahead of this one
  {"do": "axe", "name": "inbox"}                  axe-core finds no WCAG 2.1 A/AA violation
                                                  on the page (tests/support/axe, npm ci)

  {"do": "attach", "css": "input[type=file]", "paths": ["/abs/a.pdf", ...]}
                                                  choose files in a file input
  {"do": "content_type", "as": "name"}            record document.contentType
                                                  (what the browser shows) as texts[name]
  {"do": "download", "css": "a.x", "as": "name"}  click a link that downloads a file, wait for
                                                  the browser to finish it, and record
                                                  {"file", "size", "sha256"} as texts[name]
  {"do": "window", "width": 390, "height": 844}   resize the browser window (CSS pixels)
  {"do": "scroll", "css": "#x"}                   scroll the element to the top of the window
  {"do": "fits_width"}                            the page does not scroll sideways (no element
                                                  wider than the window)
Steps that look for elements or poll accept "timeout" (seconds, default 5).

Success: prints {"ok": true, "steps": N, "texts": {...}, "url": FINAL_URL} on
stdout and exits 0. First failing step: one line on stderr naming the step
index, the step and why; saves STEPS.json.failure.png and .failure.html next
to STEPS.json (their paths follow on stderr); exits 1. Exit 2: bad usage or
STEPS.json, or the browser could not be started (e.g. chromium/chromedriver
missing), or axe-core is not installed.

The "axe" step injects axe-core's own axe.min.js into the page through
WebDriver's execute/sync (scripts WebDriver runs are not subject to the
page's Content-Security-Policy, which forbids every script of the page),
then runs axe.run on the whole document through execute/async with the
rules tagged wcag2a, wcag2aa, wcag21a and wcag21aa; any violation fails the
step with its rule id, impact, help text and the selectors of the elements.
"""

import base64, hashlib, json, os, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.error, urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier
WAIT = 5.0            # default wait for elements / expectations, seconds
NAV_START = 2.0       # how long a click may take to start a navigation
PAGE_LOAD = 30.0      # how long a page may take to load
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
               "--no-proxy-server"]
RETRYABLE = {"no such element", "stale element reference", "element not interactable",
             "element click intercepted", "javascript error", "no such execution context"}
AXE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "axe", "node_modules",
                   "axe-core", "axe.min.js")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(r => done({violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.map(n => n.target.join(' ')), summary: (v.nodes[0] || {}).failureSummary || ''}))}))
  .catch(e => done({error: String(e)}));
"""
# Never send the requests to ChromeDriver through an http_proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StepFailed(Exception):
    """A step's expectation did not hold (or its element never appeared)."""


class WebDriverError(Exception):
    def __init__(self, error, message):
        first = message.splitlines()[0] if message else ""
        super().__init__(first if first.startswith(error) else f"{error}: {first}")
        self.error = error


def http(method, url, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            payload = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            payload = json.loads(e.read())
        except ValueError:
            raise WebDriverError("http error", f"{e.code} {e.reason}") from None
    value = payload.get("value")
    if isinstance(value, dict) and "error" in value:
        raise WebDriverError(value["error"], value.get("message", ""))
    return value


class Browser:
    def __init__(self, base, session):
        self.url = f"{base}/session/{session}"

    def cmd(self, method, path, body=None):
        return http(method, self.url + path, body)

    def js(self, script):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})

    def poll(self, what, attempt, timeout):
        """Call attempt() until it returns a non-None value, retrying transient
        WebDriver errors; StepFailed with the last reason after `timeout` s."""
        deadline, last = time.monotonic() + timeout, None
        while True:
            try:
                result = attempt()
                if result is not None:
                    return result
            except WebDriverError as e:
                if e.error not in RETRYABLE:
                    raise
                last = None if e.error == "no such element" else str(e)
            if time.monotonic() >= deadline:
                raise StepFailed(f"{what} (waited {timeout:g}s{'; ' + last if last else ''})")
            time.sleep(0.1)

    def find(self, css, timeout, parent=None):
        path = f"/element/{parent}/element" if parent else "/element"
        found = self.poll(f"no element matches {css!r}", lambda: self.cmd(
            "POST", path, {"using": "css selector", "value": css}), timeout)
        return found[ELEMENT]

    def wait_loaded(self):
        self.poll("the page did not finish loading", lambda: True if self.js(
            "return document.readyState;") == "complete" else None, PAGE_LOAD)

    def click(self, find_element, timeout):
        """Click, then wait for the navigation the click started, if any: the
        marker lives on the old document, so it disappears once a new one is
        there (avoids reading readyState of the page that is going away)."""
        self.js("window.__kh_marker = true;")
        self.poll("cannot click", lambda: self.cmd(
            "POST", f"/element/{find_element()}/click", {}) or True, timeout)
        try:
            self.poll("", lambda: None if self.js("return window.__kh_marker === true;")
                      else True, NAV_START)
        except StepFailed:
            pass  # still the same document: the click did not navigate
        self.wait_loaded()


def run_step(b, step, texts):
    do, timeout = step.get("do"), float(step.get("timeout", WAIT))
    if do == "goto":
        b.cmd("POST", "/url", {"url": step["url"]})
        b.wait_loaded()
    elif do == "fill":  # retried as a whole (clear + type) if the element goes stale
        def fill():
            el = b.find(step["css"], timeout)
            b.cmd("POST", f"/element/{el}/clear", {})
            return b.cmd("POST", f"/element/{el}/value", {"text": step["text"]}) or True
        b.poll(f"cannot fill {step['css']!r}", fill, timeout)
    elif do == "fill_totp":  # the current code of a secret read earlier (texts[secret]), by oathtool
        # "shift": seconds the server's clock is ahead of this one (a simulated clock).
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + float(step.get("shift", 0))))
        code = subprocess.run(["oathtool", "--totp", "-b", texts[step["secret"]].strip(), "--now", at],
                              check=True, capture_output=True, text=True).stdout.strip()

        def fill_code():
            el = b.find(step["css"], timeout)
            b.cmd("POST", f"/element/{el}/clear", {})
            return b.cmd("POST", f"/element/{el}/value", {"text": code}) or True
        b.poll(f"cannot fill {step['css']!r}", fill_code, timeout)
    elif do == "click":
        b.click(lambda: b.find(step["css"], timeout), timeout)
    elif do == "submit_form":
        submit = "button[type=submit], input[type=submit], button:not([type])"
        b.click(lambda: b.find(submit, timeout, parent=b.find(step["css"], timeout)), timeout)
    elif do == "expect_text":
        want, seen = step["contains"], [None]

        def has_text():
            seen[0] = b.cmd("GET", f"/element/{b.find(step['css'], timeout)}/text")
            return True if want in seen[0] else None
        try:
            b.poll(f"no element matches {step['css']!r}", has_text, timeout)
        except StepFailed:
            if seen[0] is None:
                raise
            raise StepFailed(f"text of {step['css']!r} does not contain {want!r} after "
                             f"{timeout:g}s; it is {seen[0][:500]!r}") from None
    elif do == "expect_url":
        b.poll(f"URL does not contain {step['contains']!r}", lambda: True if step["contains"]
               in b.cmd("GET", "/url") else None, timeout)
    elif do == "expect_absent":
        b.poll(f"an element matches {step['css']!r}", lambda: True if not b.cmd(
            "POST", "/elements", {"using": "css selector", "value": step["css"]}) else None,
            timeout)
    elif do == "axe":
        check_axe(b, step["name"])
    elif do == "screenshot":
        save_screenshot(b, step["path"])
    elif do == "text":
        texts[step["as"]] = b.poll(f"cannot read the text of {step['css']!r}", lambda: b.cmd(
            "GET", f"/element/{b.find(step['css'], timeout)}/text"), timeout)
    elif do == "attach":  # ChromeDriver takes several files as paths on separate lines
        def attach():
            el = b.find(step["css"], timeout)
            return b.cmd("POST", f"/element/{el}/value", {"text": "\n".join(step["paths"])}) or True
        b.poll(f"cannot attach files to {step['css']!r}", attach, timeout)
    elif do == "content_type":
        texts[step["as"]] = b.js("return document.contentType;")
    elif do == "download":
        texts[step["as"]] = download(b, step["css"], timeout)
    elif do == "window":
        b.cmd("POST", "/window/rect", {"width": int(step["width"]), "height": int(step["height"])})
    elif do == "scroll":  # bring an element to the top of the window (before a screenshot)
        el = b.find(step["css"], timeout)
        b.cmd("POST", "/execute/sync", {"script": "arguments[0].scrollIntoView();",
                                        "args": [{ELEMENT: el}]})
    elif do == "measure":  # the page's size in CSS pixels, as texts[as] = [width, height]
        texts[step["as"]] = b.js("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];")
    elif do == "fits_width":
        sizes = b.js("return [document.documentElement.scrollWidth, window.innerWidth];")
        if sizes[0] > sizes[1]:
            wide = b.js("""return Array.from(document.querySelectorAll('body *'))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''));""")
            raise StepFailed(f"the page is {sizes[0]}px wide in a {sizes[1]}px window; "
                             f"too wide: {', '.join(wide)}")
    else:
        raise StepFailed(f"unknown step {do!r}")


def download(b, css, timeout):
    """Click a download link; wait (up to max(timeout, 30) s) for one new,
    finished file in the browser's download directory."""
    before = set(os.listdir(b.downloads))
    b.click(lambda: b.find(css, timeout), timeout)
    deadline = time.monotonic() + max(timeout, 30)
    while time.monotonic() < deadline:
        new = [n for n in os.listdir(b.downloads) if n not in before]
        done = [n for n in new if not n.endswith((".crdownload", ".tmp"))]
        if done and len(done) == len(new):
            path = os.path.join(b.downloads, done[0])
            with open(path, "rb") as f:
                data = f.read()
            return {"file": done[0], "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        time.sleep(0.1)
    raise StepFailed(f"no download finished after clicking {css!r}")


def check_axe(b, name):
    """Run axe-core on the current page; StepFailed listing every violation."""
    with open(AXE) as f:
        source = f.read()
    b.cmd("POST", "/execute/sync", {"script": source + "\nreturn typeof axe;", "args": []})
    result = b.cmd("POST", "/execute/async", {"script": AXE_RUN, "args": [AXE_TAGS]})
    if result.get("error"):
        raise StepFailed(f"axe-core could not check page {name!r}: {result['error']}")
    found = result["violations"]
    if found:
        lines = [f"{v['id']} ({v['impact']}): {v['help']} — at {'; '.join(v['targets'][:8])}"
                 f"{' …' if len(v['targets']) > 8 else ''} — {v['summary'][:300]}" for v in found]
        raise StepFailed(f"axe-core: {len(found)} WCAG 2.1 A/AA violation(s) on page {name!r} "
                         f"({b.cmd('GET', '/url')}):\n  " + "\n  ".join(lines))


def save_screenshot(b, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(b.cmd("GET", "/screenshot")))


def save_source(b, path):
    with open(path, "w") as f:
        f.write(b.cmd("GET", "/source"))


def start_chromedriver(tmp):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(tmp, "chromedriver.log"), "wb") as log:
        proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if (http("GET", base + "/status", timeout=2) or {}).get("ready"):
                return proc, base
        except (OSError, WebDriverError):
            pass
        time.sleep(0.1)
    with open(os.path.join(tmp, "chromedriver.log"), errors="replace") as f:
        tail = f.read()[-2000:]
    why = "within 20s" if proc.poll() is None else f"(it exited with status {proc.poll()})"
    stop(proc)
    raise RuntimeError(f"chromedriver did not become ready on port {port} {why}; "
                       f"its output:\n{tail}")


def stop(proc):
    """End chromedriver and whatever it left in its own process group (a browser
    whose session could not be deleted); the group id is ours while unreaped."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} STEPS.json", file=sys.stderr)
        return 2
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            print(f"webdriver_flow: {path} is missing; run scripts/test-services "
                  "(installs chromium and chromium-driver)", file=sys.stderr)
            return 2
    if not os.access(AXE, os.R_OK):
        print(f"webdriver_flow: {AXE} is missing; run scripts/test-services "
              "(installs axe-core with npm ci in tests/support/axe)", file=sys.stderr)
        return 2
    steps_path = argv[1]
    try:
        with open(steps_path) as f:
            steps = json.load(f)["steps"]
        assert isinstance(steps, list) and all(isinstance(s, dict) for s in steps)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
        print(f"webdriver_flow: cannot read steps from {steps_path}: {e!r} "
              '(expected {"steps": [{"do": ...}, ...]})', file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="kh-webdriver-")
    proc = session = None
    try:
        try:
            proc, base = start_chromedriver(tmp)
            downloads = os.path.join(tmp, "downloads")
            os.makedirs(downloads)
            caps = {"browserName": "chrome", "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": CHROME_ARGS + [
                        "--user-data-dir=" + os.path.join(tmp, "profile")],
                        "prefs": {"download.default_directory": downloads,
                                  "download.prompt_for_download": False,
                                  "safebrowsing.enabled": False}}}
            session = http("POST", base + "/session", {"capabilities": {"alwaysMatch": caps}})
            b = Browser(base, session["sessionId"])
            b.downloads = downloads
            b.cmd("POST", "/timeouts", {"pageLoad": int(PAGE_LOAD * 1000), "script": 10000})
        except (OSError, RuntimeError, WebDriverError) as e:
            print(f"webdriver_flow: could not start the browser: {e}", file=sys.stderr)
            return 2
        texts = {}
        for i, step in enumerate(steps):
            try:
                run_step(b, step, texts)
            except (StepFailed, WebDriverError, KeyError, ValueError) as e:
                why = f"missing argument {e}" if isinstance(e, KeyError) else str(e)
                print(f"webdriver_flow: step {i} {json.dumps(step)} failed: {why}",
                      file=sys.stderr)
                for suffix, save in ((".failure.png", save_screenshot),
                                     (".failure.html", save_source)):
                    try:
                        save(b, steps_path + suffix)
                        print(f"webdriver_flow: saved {steps_path + suffix}", file=sys.stderr)
                    except Exception as err:  # the report matters more than the artifacts
                        print(f"webdriver_flow: could not save {suffix}: {err}", file=sys.stderr)
                return 1
        print(json.dumps({"ok": True, "steps": len(steps), "texts": texts,
                          "url": b.cmd("GET", "/url")}))
        return 0
    finally:
        if session:
            try:
                http("DELETE", f"{base}/session/{session['sessionId']}", timeout=15)
            except Exception:
                pass
        if proc:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still run the cleanup
    sys.exit(main(sys.argv))
