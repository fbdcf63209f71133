"""The cnnvis TensorBoard plugin: a dashboard over keras-cnnvis logs (no TF/Keras imports)."""
