"""Widgets shared by the pages: plots, galleries, the confusion view, cards, the layer tree model."""
