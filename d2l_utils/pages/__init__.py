"""Used only by the notebooks and the website: banners, plots, tables, figures and
published numbers. The training pipeline never imports from here."""
