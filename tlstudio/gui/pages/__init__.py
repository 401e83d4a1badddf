"""One module per step of the workflow, each a page of the main window."""
