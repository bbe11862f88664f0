"""Open every page of the docs site in headless Chromium and fail on a broken one.

    python tools/check_site.py _docs

The site is served over HTTP on a local port. Every page the site must have (one per notebook, the README, one per
benchmark table) and every page linked from them is loaded in the browser, and each is checked for:

- a missing image: an `<img>` that did not load (the file is absent or not an image);
- a Python traceback in an output (a notebook cell that failed when the tests ran: an error output, or any output
  that prints "Traceback (most recent call last)");
- a dead internal link: a link to a page of the site that does not exist, or to an anchor (`page.html#name`) that is
  not on that page.

It exits 1 listing every problem, page by page."""
import argparse, functools, http.server, sys, threading, time, urllib.parse
from pathlib import Path

from selenium.webdriver.common.by import By
from tqdm.auto import tqdm

from check_lab import chrome, CheckFailed
from docsite import expected_pages

JS_PAGE = """return {
  images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
  tracebacks: Array.from(document.querySelectorAll('.output_area'))
     .filter(e => e.querySelector('.output_error') || e.textContent.includes('Traceback (most recent call last)'))
     .map(e => e.textContent.trim().slice(0, 300)),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name')),
  main: (document.querySelector('main') || document.body).innerText.length}"""

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    "Serve `site` on a free local port in a thread; returns the server and its base URL."
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"

def check_site(site: Path, user_data_dir: Path) -> tuple[dict[str, list[str]], int]:
    "Problems found, by page, and the number of pages opened."
    srv, base = serve(site)
    driver = chrome(user_data_dir)
    problems, seen, info = {}, set(), {}
    todo = ["index.html"] + [p for p in expected_pages() if p != "index.html"]
    try:
        bar = tqdm(total=len(todo), desc="pages", disable=not sys.stderr.isatty())
        while todo:
            page = todo.pop(0)
            if page in seen: continue
            seen.add(page)
            bad = problems.setdefault(page, [])
            if not (site / page).is_file():
                bad.append("page missing"); bar.update(); continue
            driver.get(base + page)
            info[page] = r = driver.execute_script(JS_PAGE)
            bad += [f"missing image: {src}" for src in r["images"]]
            bad += [f"traceback in an output: {t!r}" for t in r["tracebacks"]]
            if r["main"] < 200: bad.append(f"an almost empty page ({r['main']} characters)")
            for url in r["links"]:
                if not url.startswith(base): continue
                target = urllib.parse.urlparse(url).path[1:] or "index.html"
                if target.endswith(".html") and target not in seen and target not in todo:
                    todo.append(target); bar.total += 1
            bar.update()
        bar.close()
        for page, r in info.items():                     # links and anchors, once every page's ids are known
            for url in r["links"]:
                if not url.startswith(base): continue
                parts = urllib.parse.urlparse(url)
                target = parts.path[1:] or "index.html"
                if not (site / target).exists(): problems[page].append(f"dead link: {url[len(base):]} (no {target})")
                elif parts.fragment and target in info and urllib.parse.unquote(parts.fragment) not in info[target]["ids"]:
                    problems[page].append(f"dead link: {url[len(base):]} (no #{parts.fragment} on {target})")
    finally:
        driver.quit(); srv.shutdown()
    return {p: v for p, v in problems.items() if v}, len(seen)

if __name__ == "__main__":
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", nargs="?", default="_docs", help="the built site (default _docs)")
    a = ap.parse_args()
    site = Path(a.site).absolute()
    if not (site / "index.html").is_file(): sys.exit(f"{site} has no index.html: run `make docs` first")
    t = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="site-check-") as tmp: problems, n = check_site(site, Path(tmp))
    except CheckFailed as e: sys.exit(f"site check: {e}")
    if problems:
        for page, bad in problems.items():
            print(f"{page}:", file=sys.stderr)
            for b in bad: print(f"  {b}", file=sys.stderr)
        sys.exit(f"site check FAILED: {sum(map(len, problems.values()))} problems on {len(problems)} of {n} pages")
    print(f"site check passed: {n} pages opened in Chromium, no missing image, traceback or dead internal link ({time.time() - t:.0f} s)")
