"""The cnnvis TensorBoard plugin: a dashboard over keras-cnnvis logs, read through TensorBoard.

Imports neither TensorFlow nor Keras, so it can never stop TensorBoard from starting.
"""
