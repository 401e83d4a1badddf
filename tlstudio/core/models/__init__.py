"""Base models, the classifier head, weights, the layer tree, and opening model files safely."""
