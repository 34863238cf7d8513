"""Plotly figures: the 12-lead printout with CLIN/ATTR strips; evaluation curves."""
