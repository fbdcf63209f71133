"""The feature space: what a layer's vectors are (`embeddings`), their 2-D layouts
(`projection`), scores (`scores`), nearest neighbours (`knn`, `neighbors`), the embedding
monitor's core (`snapshot`) and the Embedding Projector files (`projector`).

Pictures of it are drawn by `keras_cnnvis.rendering.embedding` and `keras_cnnvis.rendering.neighbors`.
The modules are imported on demand, so `features.scores` does not load TensorFlow.
"""
