"""Training-framework callbacks: Hugging Face Transformers and PyTorch Lightning.

Each module imports its framework; import the one you use:
`from dvcckpt.integrations.transformers import DvcckptCallback`.
"""
