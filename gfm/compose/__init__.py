"""Stage 3: the RSSN composition route and its ingredients (Sect. 4, Pipeline 1)."""
