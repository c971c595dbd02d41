"""The model registry: models, versions (candidate → approved → retired), encrypted
weights, Hugging Face model cards, lineage and audited export.

Inference loads an approved version with `privet.models.weights.load_version(...)`.
"""
