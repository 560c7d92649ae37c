"""Stage 4: training GFM (losses of Sect. 3.2-3.5, implementation details of Sect. 5.2)."""
