"""Fixtures shared by several test modules."""

import pytest
import torch

from gfm.data.registry import MIRROR_ENV


@pytest.fixture(autouse=True)
def no_download_mirror(monkeypatch):
    """Tests see the downloads as a machine without GFM_MIRROR does (a test that wants one sets it)."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread: tiny tensors run faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def make_run():
    """Factory of training run folders as gfm.train.loop writes them (model.pt + train_summary.json).

    ``make_run(folder, rosta="TT", *, backbone="r18_lite", legacy=False, seed=0, **spec)`` -> the
    model saved (eval mode). ``legacy=True`` writes the format before gfm.model.checkpoint: a bare
    state dict whose spec is the ``config`` of train_summary.json.
    """
    from pathlib import Path

    from gfm.core.io import write_json
    from gfm.model.checkpoint import MODEL_FILE, SUMMARY_FILE, ModelSpec, save_run

    def make(folder, rosta="TT", *, backbone="r18_lite", legacy=False, seed=0, **spec):
        spec = ModelSpec(backbone, rosta, **spec)
        torch.manual_seed(seed)
        model = spec.build().eval()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if legacy:
            torch.save(model.state_dict(), folder / MODEL_FILE)
        else:
            save_run(folder, model, spec, extra={"experiment": folder.name, "track": "ori"})
        config = {"experiment": folder.name, "track": "ori", **spec.to_dict()}
        write_json(folder / SUMMARY_FILE, {"experiment": folder.name, "config": config})
        return model

    return make
