"""Model loading, adapters, token roles and the experiments that run as nnsight traces."""
