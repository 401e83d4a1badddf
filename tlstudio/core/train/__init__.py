"""Training: the phases, the feature cache, checkpoints and resume, the Keras callback bridge, the launcher."""
