"""Interactive widgets (the only place importing ipywidgets)."""
