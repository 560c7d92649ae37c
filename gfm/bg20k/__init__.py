"""Stage 2: constructing the BG-20k background set (Sect. 4.1)."""
