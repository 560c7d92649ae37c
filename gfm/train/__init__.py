"""Stage 4: training GFM (Sect. 3.3 losses, Sect. 6 implementation details)."""
