"""`nbdev_test`, keeping what it ran: the same command line, the same cells skipped, the same report and exit status,
and each notebook it executed written with its outputs to `_exec/` (or `$EXPLICITLM_EXEC_DIR`), so that the docs
(`tools/build_docs.py`) show real outputs without running the notebooks a second time.

    python tools/test_nbs.py --n_workers 2 --timing        # as nbdev_test --n_workers 2 --timing

nbdev's own `nbdev_test` and `test_nb` run unchanged; only the shell they execute cells in is nbdev's `CaptureShell`
plus one step at the end of a notebook: its outputs are copied, cell by cell (by cell id), into a fresh read of the
notebook (directives and all, which the test run strips) and written atomically. A notebook that fails is written too,
up to the cell that failed, traceback included (so the docs check would fail on it as well)."""
import multiprocessing, os
from pathlib import Path

import nbdev.test
from execnb.nbio import read_nb, nb2str
from execnb.shell import CaptureShell
from nbdev.config import get_config
from explicitlm.files import atomic_write_text

def exec_dir() -> Path:
    "Where executed notebooks go: `$EXPLICITLM_EXEC_DIR`, else `_exec/` beside settings.ini."
    return Path(os.environ.get("EXPLICITLM_EXEC_DIR") or get_config().config_path / "_exec").absolute()

def with_outputs(src: Path, ran) -> dict:
    "The notebook at `src` as stored, each code cell given the outputs of the cell with its id in `ran` (an executed notebook)."
    nb = read_nb(src)
    done = {c.get("id"): c for c in ran.cells if c.cell_type == "code" and "outputs" in c}
    for c in nb.cells:
        if c.cell_type == "code" and c.get("id") in done:
            c.outputs, c.execution_count = done[c.id].outputs, done[c.id].get("execution_count")
    return nb

import explicitlm.minimind, explicitlm.explicit    # the package's own Auto registrations, before any notebook runs

def auto_registries() -> list:
    "transformers' Auto* registries (config and model classes registered at run time), each a dict of what was registered."
    from transformers.models.auto import configuration_auto, modeling_auto
    return [configuration_auto.CONFIG_MAPPING, *(v for k, v in vars(modeling_auto).items()
                                                 if k.startswith("MODEL_") and k.endswith("_MAPPING") and hasattr(v, "_extra_content"))]

class KeepingShell(CaptureShell):
    """nbdev's test shell, which writes the notebook it ran, with its outputs, to `exec_dir()` when the run ends. A worker
    runs several notebooks in one process: a notebook's exported cells register *its own copies* of the package's
    classes with transformers' Auto classes (`AutoConfig.register(...)` run in the notebook), and a later notebook in the
    same worker would get those copies back from `AutoConfig` and be refused by `AutoModelForCausalLM`. So every
    notebook starts from the registries as they were before it, and leaves them so."""
    def __init__(self, path=None, *args, **kwargs):
        super().__init__(path, *args, **kwargs)
        self.nb_path = Path(path) if path else None

    def run_all(self, nb, *args, **kwargs):
        saved = [(m, dict(m._extra_content)) for m in auto_registries()]
        try: return super().run_all(nb, *args, **kwargs)
        finally:
            for m, content in saved: m._extra_content.clear(); m._extra_content.update(content)
            if self.nb_path is not None:
                rel = self.nb_path.resolve().relative_to(get_config().nbs_path.resolve())
                atomic_write_text(exec_dir() / rel, nb2str(with_outputs(self.nb_path, nb)))

if __name__ == "__main__":
    multiprocessing.set_start_method("fork", force=True)   # workers inherit the next line (Python 3.14 defaults to forkserver)
    nbdev.test.CaptureShell = KeepingShell                 # nbdev's test_nb runs each notebook in this shell
    nbdev.test.nbdev_test()                      # parses sys.argv exactly as the nbdev_test command does
    print(f"executed notebooks, with outputs: {exec_dir()}")
