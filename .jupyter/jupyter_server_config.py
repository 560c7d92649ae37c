# Installed into .venv/etc/jupyter by `make setup`: JupyterLab (`make lab` or `.venv/bin/jupyter lab`)
# saves the stage notebooks in notebooks/ without outputs, so running one in Lab never changes a dvc
# dependency. Executed copies with outputs are the pipeline's reports/notebooks/.
from gfm.core.notebook import pre_save_hook

c.FileContentsManager.pre_save_hook = pre_save_hook  # noqa: F821
