"""The tour in a real JupyterLab, driven by a real browser: start `jupyter lab` on a local port, open `nbs/index.ipynb`
in headless Chromium (selenium, with Debian's chromium and chromium-driver), click Run > Run All Cells, and check
what a person would see:

- every cell ran, and no output holds a Python traceback;
- no widget failed ("Error displaying widget");
- the retrieval explorer shows its table (rows of entries with scores and gates) and its heatmap (a loaded image);
- the bank editor shows its page of entries and the answer to its question;
- typing a new text for the entry the question retrieves, in the editor's own boxes (unfreezing it first with the
  editor's toggle when training froze it), and clicking Apply changes the answer the editor shows.

Screenshots of the notebook, the explorer and the editor before and after the edit are written to `--out`
(`make check-lab`: out/lab/). The notebook runs from a copy in `--out`/work, so the repository's notebook never gets
outputs (JupyterLab autosaves) and the tour's training run lands there too.

    python tools/check_lab.py --out out/lab"""
import argparse, json, os, re, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_INSTALL = "apt-get install -y chromium chromium-driver"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEW_TEXT = "Kouvan Vope was born in 1650."          # what the check types into the bank editor

class CheckFailed(Exception): pass

def free_port() -> int:
    "A TCP port nothing listens on now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def chrome(user_data_dir: Path, width: int = 1400, height: int = 2400) -> webdriver.Chrome:
    "Headless Chromium (Debian's, with its driver), a fresh profile, nothing fetched from outside."
    for p in (CHROMIUM, CHROMEDRIVER):
        if not Path(p).exists(): raise CheckFailed(f"{p} is missing: {CHROMIUM_INSTALL} (as root)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in CHROMIUM_FLAGS + [f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"]: opts.add_argument(f)
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))

def lab_settings(settings_dir: Path) -> None:
    """JupyterLab settings for a check: every cell in the page (no virtual scrolling, which leaves cells out of the
    page), and no news or update checks (no network here)."""
    files = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
             "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False}}
    for name, value in files.items():
        (settings_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (settings_dir / name).write_text(json.dumps(value))

def start_lab(work: Path, port: int, token: str, log: Path, settings_dir: Path) -> subprocess.Popen:
    "`jupyter lab` serving `work` on 127.0.0.1:`port`; returns once it answers (its output goes to `log`)."
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings_dir), JUPYTERLAB_WORKSPACES_DIR=str(settings_dir / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(settings_dir / "runtime"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--ServerApp.port_retries=0", "--allow-root"]      # (CI runs as root)
    server = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    for _ in range(120):
        if server.poll() is not None: raise CheckFailed(f"jupyter lab exited ({server.returncode}); its log: {log}")
        try:
            with urllib.request.urlopen(url, timeout=2): return server
        except OSError: time.sleep(0.5)
    server.terminate()
    raise CheckFailed(f"jupyter lab did not answer on port {port} within a minute; its log: {log}")

# ---- what is on the page (JavaScript run in the browser)

JS_PROMPTS = "return Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim())"
JS_TRACEBACKS = """return Array.from(document.querySelectorAll('.jp-OutputArea-output'))
  .map(e => e.textContent).filter(t => t.includes('Traceback (most recent call last)')).map(t => t.slice(0, 2000))"""
JS_CELL_OUTPUT = """const cells = Array.from(document.querySelectorAll('.jp-CodeCell'));
  const c = cells.find(c => (c.querySelector('.jp-InputArea-editor')?.textContent || '').includes(arguments[0]));
  return c ? c.querySelector('.jp-OutputArea') : null"""

def wait(driver, what: str, cond, timeout: float, poll: float = 1.0):
    "Wait until `cond(driver)` is truthy (returning it), or fail naming `what`."
    try: return WebDriverWait(driver, timeout, poll_frequency=poll).until(lambda d: cond(d))
    except TimeoutException: raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}") from None

def cell_output(driver, marker: str):
    "The output area of the code cell whose source contains `marker`."
    out = driver.execute_script(JS_CELL_OUTPUT, marker)
    if out is None: raise CheckFailed(f"no code cell containing {marker!r} in the notebook")
    return out

def click_menu(driver, menu: str, item: str) -> None:
    "Click `menu` in JupyterLab's menu bar, then its item labelled `item`."
    bar = wait(driver, f"the {menu!r} menu", lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                                                          if e.text.strip() == menu], 60)
    bar[0].click()
    items = wait(driver, f"the menu item {item!r}", lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "li.lm-Menu-item")
                                                               if e.text.strip().split("\n")[0] == item], 10)
    items[0].click()

def run_all(driver, timeout: float) -> list[str]:
    "Run > Run All Cells, then wait until no cell is queued or running; returns the input prompts."
    click_menu(driver, "Run", "Run All Cells")
    wait(driver, "the first cell to start", lambda d: any("*" in p for p in d.execute_script(JS_PROMPTS))
         or all(p.strip("[]: ") for p in d.execute_script(JS_PROMPTS)), 60, 0.2)
    t = time.time()
    def _done(d):
        prompts = d.execute_script(JS_PROMPTS)
        if d.execute_script(JS_TRACEBACKS): return prompts          # an error stops Run All: stop waiting too
        return prompts if not any("*" in p for p in prompts) else None
    prompts = wait(driver, "Run All to finish", _done, timeout, 2.0)
    print(f"  Run All finished in {time.time() - t:.0f} s", flush=True)
    return prompts

def widget_check(driver, marker: str, name: str) -> dict:
    "What the widget displayed by the cell containing `marker` shows: its tables' rows, its images, its text."
    out = cell_output(driver, marker)
    info = driver.execute_script("""const o = arguments[0];
      return {widgets: o.querySelectorAll('.jupyter-widgets').length,
              tables: Array.from(o.querySelectorAll('table')).map(t => Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.textContent.trim()))),
              images: Array.from(o.querySelectorAll('img')).map(i => ({w: i.naturalWidth, h: i.naturalHeight, done: i.complete})),
              text: o.innerText}""", out)
    if "Error displaying widget" in info["text"]: raise CheckFailed(f"{name}: Error displaying widget")
    if not info["widgets"]: raise CheckFailed(f"{name}: no widget in the output of the cell with {marker!r}: {info['text'][:300]!r}")
    return info

def table_with(info: dict, column: str, name: str) -> list[dict]:
    "The rows (dicts) of the first table in `info` with a header `column`, or a failure naming `name`."
    for t in info["tables"]:
        if t and column in t[0] and len(t) > 1: return [dict(zip(t[0], r)) for r in t[1:]]
    raise CheckFailed(f"{name}: no table with a {column!r} column and rows; tables: {info['tables']}")

def answer_of(driver, out) -> tuple[int, str]:
    "The bank editor's answer line: (its counter, the answer text)."
    t = driver.execute_script("""const b = Array.from(arguments[0].querySelectorAll('b')).find(e => e.textContent === 'answer');
      return b ? [b.parentElement.textContent, b.parentElement.querySelector("b[style*='color']")?.textContent ?? ''] : null""", out)
    m = re.search(r"#(\d+)\)", t[0]) if t else None
    if not m: raise CheckFailed(f"bank editor: no answer line with a counter ({t})")
    return int(m[1]), t[1]

def labelled(out, label: str, tag: str = "input"):
    "The input of the ipywidget labelled `label` inside `out`."
    found = out.find_elements(By.XPATH, f".//label[normalize-space()='{label}']/following-sibling::{tag}")
    if not found: raise CheckFailed(f"bank editor: no {tag} labelled {label!r}")
    return found[0]

def edit_in_editor(driver, shots: Path) -> tuple[str, str, int]:
    "Type `NEW_TEXT` into the entry the question retrieves, in the editor's boxes, click Apply; (answer before, after, entry)."
    out = cell_output(driver, "BankEditor(")
    n0, before = answer_of(driver, out)
    retrieved = table_with(widget_check(driver, "BankEditor(", "bank editor"), "gate", "bank editor's retrieved entries")
    entry = int(retrieved[0]["entry"])
    index_box = labelled(out, "entry")
    index_box.send_keys(Keys.CONTROL, "a"); index_box.send_keys(str(entry), Keys.TAB)
    wait(driver, f"the editor to load entry {entry}'s text", lambda d: labelled(out, "text").get_attribute("value")
         == retrieved[0]["entry_text"], 60, 0.2)
    lock = [b for b in out.find_elements(By.TAG_NAME, "button") if b.text.strip().endswith("frozen")][0]
    if "mod-active" in (lock.get_attribute("class") or ""):    # training froze 20% of the entries: unfreeze it, as a user must
        lock.click()
        wait(driver, f"entry {entry} to be unfrozen", lambda d: "mod-active" not in (lock.get_attribute("class") or ""), 30, 0.2)
        print(f"  bank editor: entry {entry} was frozen; unfrozen with its toggle")
    text_box = labelled(out, "text")
    text_box.send_keys(Keys.CONTROL, "a"); text_box.send_keys(NEW_TEXT)
    [b for b in out.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Apply"][0].click()
    n1, after = wait(driver, "the editor's answer to update after Apply", lambda d: (a := answer_of(d, out))[0] > n0 and a, 120, 0.5)
    out.screenshot(str(shots / "editor-after-edit.png"))
    return before, after, entry

def check(notebook: Path, out: Path, timeout: float) -> list[Path]:
    "Run the check; returns the files written."
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True); work.mkdir()
    shutil.copy(notebook, work / notebook.name)
    if (notebook.parent / "images").is_dir(): shutil.copytree(notebook.parent / "images", work / "images")
    port, token, log = free_port(), secrets.token_hex(16), out / "jupyter.log"
    written = []
    with tempfile.TemporaryDirectory(prefix="lab-check-") as tmp:
        lab_settings(Path(tmp) / "settings")
        server = start_lab(work, port, token, log, Path(tmp) / "settings")
        driver = None
        try:
            driver = chrome(Path(tmp) / "chromium")
            driver.get(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}")
            wait(driver, "the notebook and an idle kernel", lambda d: d.find_elements(
                By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"), 120)
            print(f"  JupyterLab on port {port} opened {notebook.name}; Run > Run All Cells", flush=True)
            prompts = run_all(driver, timeout)
            driver.save_screenshot(str(out / "notebook.png")); written.append(out / "notebook.png")
            if (tbs := driver.execute_script(JS_TRACEBACKS)): raise CheckFailed("a traceback in an output:\n" + tbs[0])
            if (missing := [p for p in prompts if not p.strip("[]: ").isdigit()]):
                raise CheckFailed(f"{len(missing)} of {len(prompts)} code cells did not run (prompts {missing})")
            if "Error displaying widget" in driver.find_element(By.TAG_NAME, "body").text:
                raise CheckFailed("a widget shows 'Error displaying widget'")
            ex = widget_check(driver, "RetrievalExplorer(", "retrieval explorer")
            rows = table_with(ex, "entry_text", "retrieval explorer")
            if not any(i["done"] and i["w"] > 100 and i["h"] > 50 for i in ex["images"]):
                raise CheckFailed(f"retrieval explorer: no heatmap image loaded (images: {ex['images']})")
            cell_output(driver, "RetrievalExplorer(").screenshot(str(out / "explorer.png")); written.append(out / "explorer.png")
            print(f"  retrieval explorer: a table of {len(rows)} rows, a {ex['images'][0]['w']}x{ex['images'][0]['h']} heatmap")
            ed = widget_check(driver, "BankEditor(", "bank editor")
            page = table_with(ed, "text", "bank editor's page")
            cell_output(driver, "BankEditor(").screenshot(str(out / "editor.png")); written.append(out / "editor.png")
            print(f"  bank editor: a page of {len(page)} entries, answer shown")
            widget_check(driver, "TrainingMonitor(", "training monitor")
            before, after, entry = edit_in_editor(driver, out)
            written.append(out / "editor-after-edit.png")
            print(f"  bank editor: entry {entry} set to {NEW_TEXT!r} with Apply; answer {before!r} -> {after!r}")
            if after == before: raise CheckFailed(f"the answer did not change after editing entry {entry}: still {after!r}")
            if (tbs := driver.execute_script(JS_TRACEBACKS)): raise CheckFailed("a traceback after the edit:\n" + tbs[0])
        except CheckFailed:
            if driver is not None:
                driver.save_screenshot(str(out / "failure.png")); written.append(out / "failure.png")
            raise
        finally:
            if driver is not None: driver.quit()
            server.terminate()
            try: server.wait(30)
            except subprocess.TimeoutExpired: server.kill()
    return written + [log]

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", default=str(ROOT / "nbs" / "index.ipynb"), help="the notebook to run (default: the tour)")
    ap.add_argument("--out", default=str(ROOT / "out" / "lab"), help="screenshots, the server's log and the working copy")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds Run All may take")
    a = ap.parse_args()
    t = time.time()
    try: files = check(Path(a.notebook).absolute(), Path(a.out).absolute(), a.timeout)
    except CheckFailed as e:
        print(f"JupyterLab check FAILED: {e}\n(screenshot and server log in {a.out})", file=sys.stderr); sys.exit(1)
    print(f"JupyterLab check passed ({time.time() - t:.0f} s). Wrote:\n" + "\n".join(f"  {f}" for f in files))
