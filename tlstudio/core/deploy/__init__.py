"""Using a trained model: prediction, Grad-CAM, export, verification, model card, sample scripts."""
