"""`python -m services.embedder`: run the embedder service."""

import os

# Never reach the Hugging Face Hub: models come from disk or the local cache.
# Set before anything imports huggingface_hub, which reads these once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from services.embedder.server import main

main()
