"""Folder -> scan -> split -> pipeline: which images there are and how they reach the model."""
