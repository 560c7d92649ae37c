"""Stage 5: metrics, inference (hybrid-resolution test) and evaluation of the grid (Sect. 5-7)."""
