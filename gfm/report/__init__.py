"""Stage 6: the paper's tables, figures and findings from the stage outputs, and the HTML pages."""
