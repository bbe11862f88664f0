"""Build the documentation site in `_docs/`: every notebook a page with the outputs it had when the tests ran, the API
reference, the README, the benchmark tables.

    python tools/build_docs.py [--exec-dir _exec] [--out _docs]

1. The notebooks as `tools/test_nbs.py` (the test run) executed them, outputs included, are read from `_exec/`: the
   docs never run a notebook a second time. A notebook missing there, or older than its source, is an error.
2. nbdev's own docs processors (`nbdev.processors.FilterDefaults`, what `nbdev_docs` applies before Quarto) process
   each one: hidden cells removed, frontmatter, a `show_doc` for every exported name (the API reference). One of them
   is changed: nbdev's `exec_show_docs` runs every cell that contains an import, which fails on a cell that imports
   and then tests (the tests' names are not defined there); here such a cell runs its imports only, and no cell's
   outputs from the test run are replaced.
3. Each processed notebook is rendered to HTML with nbconvert, in a site with a sidebar. `nbdev_docs` would hand the
   processed notebooks to Quarto instead; Quarto cannot be installed offline (the `quarto-cli` package on PyPI is a
   source distribution that downloads the Quarto binary from GitHub while it builds), and `nbdev_docs` also rewrites
   README.md from the tour notebook, which this project writes by hand.
Links between pages (notebook links, nbdev's doc links, the README's links to bench/results/*.md) are rewritten to the
site's pages; `tools/check_site.py` opens every page in a browser and fails on a dead link, a missing image or a
traceback in an output."""
import argparse, ast, html, multiprocessing, os, re, shutil, sys, time
from pathlib import Path

import nbformat, yaml
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter
from tqdm.auto import tqdm
from traitlets.config import Config

from execnb.nbio import read_nb, nb2str
from nbdev.config import get_config
from nbdev.process import NBProcessor
from nbdev.processors import FilterDefaults, exec_show_docs, _show_docs
from docsite import ROOT, README_PAGE, notebook_page, bench_page, notebooks, bench_results
from explicitlm.files import atomic_write_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<div class='widget-note'>An interactive widget (ipywidgets): it needs a live Python kernel, so it shows "
               "only in JupyterLab. Run this notebook there; <code>make check-lab</code> does so in a browser.</div>")

# ---- 1. the executed notebooks

def check_executed(exec_dir: Path) -> None:
    "Every notebook has an executed copy in `exec_dir` that is not older than it, or a clear error."
    missing = [p.name for p in notebooks() if not (exec_dir / p.name).exists()]
    stale = [p.name for p in notebooks() if (exec_dir / p.name).exists()
             and (exec_dir / p.name).stat().st_mtime < p.stat().st_mtime]
    if missing or stale:
        sys.exit(f"the docs show the notebooks as the tests ran them, and {exec_dir} has "
                 + "; ".join(f"{what}: {', '.join(names)}" for what, names in (("no run of", missing), ("an older run of", stale)) if names)
                 + ": run `make test` (or `make docs`, which runs them when needed)")

# ---- 2. nbdev's processing

_SHOWN = {"export", "exports", "exporti", "exec_doc"}              # the directives whose cells nbdev runs for the docs

class exec_api_docs(exec_show_docs):
    """nbdev's `exec_show_docs` (which runs what `show_doc` needs, then the `show_doc` calls), except that a cell
    mixing imports and other code runs its imports only, and only `show_doc` cells get (new) outputs."""
    def begin(self):
        super().begin()
        # A transformers PreTrainedConfig subclass gets an __init__ whose inherited annotations name `torch.dtype` and
        # `Literal`, resolved by show_doc in the namespace its cell ran in: this shell's.
        if hasattr(self, "k"): self.k.run_cell("import torch\nfrom typing import Literal")

    def __call__(self, cell):
        if not self.nb.has_docs_ or not hasattr(self, "k") or cell.cell_type != "code" or not cell.source: return
        if str(getattr(self.nb, "frontmatter_", {}).get("skip_showdoc", "")).lower() in ("true", "1"): return
        if (cell.directives_.get("eval:", [""])[0]).lower() == "false": return
        trees = cell.parsed_() or []
        if _show_docs(trees): self.k.cell(cell)
        elif cell.directives_.keys() & _SHOWN: self.k.run(cell.source)
        elif (imports := [ast.unparse(t) for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))]): self.k.run("\n".join(imports))
        else: return
        if self.k.exc: raise RuntimeError(f"{self.nb.path_}, cell {cell.idx_}, failed in the docs processing:\n{cell.source}") from self.k.exc

def docs_procs() -> list:
    "nbdev's docs processors, `exec_api_docs` in place of `exec_show_docs`."
    return [exec_api_docs if p is exec_show_docs else p for p in FilterDefaults().procs()]

def processed(path: str) -> str:
    "The executed notebook at `path` after nbdev's docs processing (`docs_procs`), as notebook JSON."
    nb = read_nb(path)
    NBProcessor(nb=nb, procs=docs_procs()).process()
    for i, c in enumerate(nb.cells): c.setdefault("id", f"docs-{i}")       # the cells nbdev added have none
    return nb2str(nb)

# ---- 3. pandoc / Quarto markdown that nbdev writes, as plain markdown + HTML

_LINK_ATTRS = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")
_FENCE = re.compile(r"^:::+\s*(\{([^}]*)\})?\s*$")

def pandoc_to_html(md: str) -> str:
    "Markdown with pandoc link attributes (`[a](u){target=...}`) and fenced divs (`::: {.cls}` ... `:::`) as HTML."
    md = _LINK_ATTRS.sub(lambda m: f'<a href="{m[2]}" {m[3]}>{m[1]}</a>', md)
    out = []
    for line in md.split("\n"):
        m = _FENCE.match(line.strip())
        if not m: out.append(line); continue
        if m[1] is None: out.append("\n</div>\n"); continue
        classes = " ".join(w[1:] for w in m[2].split() if w.startswith("."))
        out.append(f'\n<div class="{classes}">\n')
    return "\n".join(out)

_PROGRESS = re.compile(r"^.*\d+%\|.*\|\s*\d+/\d+(?:\s*\[.*)?$")          # a tqdm bar, in any of its states

def without_progress(text: str) -> str:
    "Stream text without its progress bars (the docs show what a cell printed, not how long it took)."
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)                              # the bars' cursor moves
    return "\n".join(l for l in re.split(r"[\r\n]", text) if l.strip() and not _PROGRESS.match(l.strip())) + "\n"

_DIRECTIVE = re.compile(r"^#\|\s*([\w-]+)\s*:?\s*(.*)$")

def directives(source: str) -> tuple[dict, str]:
    "Quarto cell options (`#| echo: false`) at the top of a code cell, and the source without them."
    lines, opts = source.split("\n"), {}
    while lines and (m := _DIRECTIVE.match(lines[0])):
        opts[m[1]] = m[2].strip().lower(); lines.pop(0)
    return opts, "\n".join(lines)

def prepare(nb) -> dict:
    "Make processed notebook `nb` renderable by nbconvert, in place; returns its frontmatter."
    fm = {}
    if nb.cells and nb.cells[0].cell_type == "raw" and nb.cells[0].source.startswith("---"):
        fm = yaml.safe_load(nb.cells.pop(0).source.strip().strip("-")) or {}
    for cell in nb.cells:
        if cell.cell_type == "markdown": cell.source = pandoc_to_html(cell.source)
        if cell.cell_type != "code": continue
        opts, cell.source = directives(cell.source)
        tags = set(cell.metadata.get("tags", []))
        if opts.get("echo") == "false": tags.add("docs-hide-input")
        if opts.get("output") == "false": tags.add("docs-hide-output")
        if opts.get("include") == "false": tags.add("docs-hide-cell")
        cell.metadata["tags"] = sorted(tags)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data: out["data"] = {"text/html": WIDGET_NOTE}
            elif "text/markdown" in data: data["text/markdown"] = pandoc_to_html(data["text/markdown"])
            if out.get("output_type") == "stream": out["text"] = without_progress(out["text"])
        if "outputs" in cell: cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" or o["text"].strip()]
    return fm

def exporter() -> HTMLExporter:
    "nbconvert's HTML exporter: cells only (the site adds the page), no prompts, Quarto's hiding options honoured."
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"docs-hide-cell"}
    c.TagRemovePreprocessor.remove_input_tags = {"docs-hide-input"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"docs-hide-output"}
    return HTMLExporter(config=c, template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)

# ---- 4. links and anchors

def link_target(url: str, from_repo: str) -> str:
    """Where a link in the docs goes on the site. `from_repo` is the folder (relative to the repository) of the file the
    link was written in: the notebooks' links are relative to nbs/, the README's and the tables' to theirs."""
    cfg = get_config()
    base = cfg.doc_host.rstrip("/") + "/" + cfg.doc_baseurl.strip("/") + "/"
    doc_link = url.startswith(base)                                                   # nbdev's link to a page of the site
    if doc_link: url = url[len(base):]
    elif re.match(r"^[a-z][a-z0-9+.-]*:|^//", url, re.I): return url                   # external, mailto
    path, frag = (url.split("#", 1) + [""])[:2]
    frag = "#" + anchor_id(frag) if frag else ""          # Jupyter's anchors ("The-Bank") as pandoc's ("the-bank")
    if doc_link or not path: return path + frag
    rel = os.path.normpath(os.path.join(from_repo, path))                             # relative to the repository
    if rel.startswith("nbs/") and rel.endswith(".ipynb"): return notebook_page(rel) + frag
    if rel.startswith("nbs/images/"): return rel[len("nbs/"):] + frag
    if rel.startswith("bench/results/") and rel.endswith(".md"): return bench_page(rel) + frag
    if rel == "README.md": return README_PAGE + frag
    return f"{cfg.git_url}/blob/{cfg.branch}/{rel}{frag}"                              # any other file of the repository

def anchor_id(text: str) -> str:
    "A heading's id as pandoc (Quarto) makes it and nbdev's doc links expect: lower case, spaces as '-'."
    return re.sub(r"[^\w.\-]", "", re.sub(r"\s+", "-", html.unescape(text).strip().lower()))

def fix_links(body: str, from_repo: str) -> str:
    "Rewrite every href/src in `body` to the site's pages, and give headings pandoc's ids."
    body = re.sub(r'(href|src)="([^"]*)"', lambda m: f'{m[1]}="{html.escape(link_target(html.unescape(m[2]), from_repo))}"', body)
    def _heading(m):
        inner = m[3]
        text = re.sub(r"<[^>]+>", "", re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.S))
        new = anchor_id(text)
        inner = re.sub(r'(<a class="anchor-link" href=")#[^"]*"', lambda a: f'{a[1]}#{new}"', inner)
        return f'<h{m[1]} id="{new}">{inner}</h{m[1]}>'
    return re.sub(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', _heading, body, flags=re.S)

def settle_api_anchors(bodies: dict[str, str]) -> dict[str, str]:
    """nbdev links every name it indexed, but only public functions, classes and `@patch` methods get a section: a link to
    a method defined in its class's body goes to the class's section, one to a private name to the top of its page.
    Only anchors that are Python names (`memorybank.edit`) are settled; any other dead anchor is left for the check."""
    ids = {f: set(re.findall(r'\bid="([^"]*)"', b)) for f, b in bodies.items()}
    def _settle(m):
        page, name = m[1], m[2]
        if page not in ids or name in ids[page]: return m[0]
        while "." in name and name not in ids[page]: name = name.rsplit(".", 1)[0]
        return f'href="{page}#{name}"' if name in ids[page] else f'href="{page}"'
    return {f: re.sub(r'href="([\w.-]+\.html)#([\w.]+)"', _settle, b) for f, b in bodies.items()}

# ---- 5. the site

CSS = """
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
nav { position: fixed; top: 0; bottom: 0; left: 0; width: 250px; overflow-y: auto; padding: 12px 16px; background: #f7f7f9;
      border-right: 1px solid #ddd; font-size: 14px; }
nav h2 { font-size: 13px; text-transform: uppercase; color: #666; margin: 16px 0 4px; }
nav a { display: block; color: #1a4f8b; text-decoration: none; padding: 1px 0; }
nav a.current { font-weight: bold; color: #000; }
main { margin-left: 290px; padding: 16px 32px 64px; max-width: 1100px; overflow-x: hidden; }
main .description { color: #555; font-size: 17px; margin-top: -8px; }
pre, code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
.cell { margin: 8px 0; }
.input_area, .output_subarea { overflow-x: auto; }
.input_area pre { background: #f5f5f5; padding: 8px 12px; border-radius: 4px; margin: 0; }
.output_area pre { padding: 4px 12px; margin: 0; }
.output_stderr pre { background: #fff5f5; }
.output_error pre { background: #fdd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
img { max-width: 100%; }
.anchor-link { visibility: hidden; margin-left: 4px; text-decoration: none; }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link, h4:hover .anchor-link { visibility: visible; }
.widget-note { border-left: 4px solid #1a4f8b; background: #eef3fa; padding: 6px 12px; margin: 4px 0; }
.border { border: 1px solid #ddd; } .rounded { border-radius: 6px; } .px-3 { padding-left: 12px; padding-right: 12px; }
.py-2 { padding-top: 8px; padding-bottom: 8px; } .mb-4 { margin-bottom: 16px; } .shadow-sm { box-shadow: 0 1px 3px #0002; }
"""

def inline_md(text: str) -> str:
    "`text` as HTML, its `code` spans as <code>."
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

def page_html(title: str, description: str, body: str, nav: list[tuple[str, list[tuple[str, str]]]], current: str) -> str:
    "A whole page: the sidebar (`nav`: sections of (page, title)), the title and description, `body`."
    links = "".join(f"<h2>{html.escape(sec)}</h2>" + "".join(
        f'<a href="{p}"{" class=current" if p == current else ""}>{inline_md(t)}</a>' for p, t in pages) for sec, pages in nav)
    head = f"<h1>{inline_md(title)}</h1>" + (f"<p class='description'>{inline_md(description)}</p>" if description else "")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title.replace('`', ''))} – ExplicitLM</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='stylesheet' href='site.css'>"
            f"</head><body><nav><a href='index.html'><b>ExplicitLM workbench</b></a>{links}</nav>"
            f"<main>{head}{body}</main></body></html>\n")

def markdown_notebook(md: str):
    "A notebook of one markdown cell (the README, a benchmark table), to render like the notebooks."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(md)]
    return nb

def first_heading(md: str, default: str) -> tuple[str, str]:
    "The text of the first `# heading` of `md` (else `default`), and `md` without it."
    m = re.search(r"^#\s+(.+)$", md, re.M)
    return (m[1].strip(), md[:m.start()] + md[m.end():]) if m else (default, md)

def build(exec_dir: Path, out: Path, n_workers: int = 2) -> list[Path]:
    "Build the site in `out` from the executed notebooks in `exec_dir`; returns the pages written."
    check_executed(exec_dir)
    exp, pages = exporter(), []                                  # (file, title, description, body)
    srcs = [str(exec_dir / p.name) for p in notebooks()]
    # one process per notebook (its exported code runs there), forked from this one (torch already imported)
    with multiprocessing.get_context("fork").Pool(n_workers, maxtasksperchild=1) as pool:
        done = list(tqdm(pool.imap(processed, srcs), total=len(srcs), desc="nbdev processing", disable=None))
    for src, d in zip(notebooks(), done):
        nb = nbformat.reads(d, as_version=4)
        fm = prepare(nb)
        body, _ = exp.from_notebook_node(nb)
        pages.append((notebook_page(src), str(fm.get("title", src.stem)), str(fm.get("description", "")), fix_links(body, "nbs")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    title, readme = first_heading(readme, "README")
    pages.append((README_PAGE, "README", "", fix_links(exp.from_notebook_node(markdown_notebook(readme))[0], ".")))
    for md in bench_results():
        title, text = first_heading(md.read_text(encoding="utf-8"), md.stem)
        pages.append((bench_page(md), title, f"bench/results/{md.name}",
                      fix_links(exp.from_notebook_node(markdown_notebook(text))[0], "bench/results")))
    bodies = settle_api_anchors({p[0]: p[3] for p in pages})
    pages = [(f, t, d, bodies[f]) for f, t, d, _ in pages]
    by_file = {p[0]: p[1] for p in pages}
    nav = [("Start", [("index.html", "Tour"), (README_PAGE, "README")]),
           ("Notebooks", [(notebook_page(p), f"{p.stem.split('_')[0]} {by_file[notebook_page(p)]}")
                          for p in notebooks() if p.stem != "index"]),
           ("Benchmarks", [(bench_page(p), by_file[bench_page(p)]) for p in bench_results()])]
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "site.css").write_text(CSS + HtmlFormatter(style="default").get_style_defs(".highlight"), encoding="utf-8")
    shutil.copytree(get_config().nbs_path / "images", tmp / "images")
    for file, title, desc, body in pages: (tmp / file).write_text(page_html(title, desc, body, nav, file), encoding="utf-8")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists(): out.rename(old)
    tmp.rename(out)                                            # the finished site takes the old one's place at once
    shutil.rmtree(old, ignore_errors=True)
    return [out / p[0] for p in pages]

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exec-dir", default=str(ROOT / "_exec"), help="the executed notebooks (tools/test_nbs.py writes them)")
    ap.add_argument("--out", default=str(ROOT / get_config().doc_path.name), help="where the site goes (default _docs)")
    ap.add_argument("--n_workers", type=int, default=2, help="processes for nbdev's processing")
    a = ap.parse_args()
    t = time.time()
    written = build(Path(a.exec_dir).absolute(), Path(a.out).absolute(), a.n_workers)
    print(f"docs site: {len(written)} pages in {a.out} ({time.time() - t:.0f} s); open {Path(a.out) / 'index.html'}")
