"""Stage 2: the BG-20k background set (Sect. 4.1): the released BG-20k passed through with its official split
(official), or a set constructed from candidate images (build, filters); summary, plots, and the stage entry."""
