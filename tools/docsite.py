"""What the docs build (`build_docs.py`) and the site check (`check_site.py`) agree on: which pages the site has."""
from pathlib import Path
from nbdev.config import get_config
from nbdev.doclinks import _nbpath2html

ROOT = Path(__file__).resolve().parent.parent
BENCH_RESULTS = ROOT / "bench" / "results"

def notebook_page(nb: str | Path) -> str:
    "The page of notebook `nb` (nbdev's own naming, which its doc links use: `01_bank.ipynb` -> `bank.html`)."
    return _nbpath2html(Path(Path(nb).name)).name

def bench_page(md: str | Path) -> str:
    "The page of a benchmark result `bench/results/NAME.md`: `bench-NAME.html`."
    return f"bench-{Path(md).stem}.html"

README_PAGE = "readme.html"

def notebooks() -> list[Path]:
    "The project's notebooks, in reading order (their file names)."
    return sorted(get_config().nbs_path.glob("*.ipynb"))

def bench_results() -> list[Path]:
    "The benchmark result tables, `bench/results/*.md`."
    return sorted(BENCH_RESULTS.glob("*.md"))

def expected_pages() -> list[str]:
    "Every page the site must have: one per notebook, the README, one per benchmark result."
    return [notebook_page(p) for p in notebooks()] + [README_PAGE] + [bench_page(p) for p in bench_results()]
