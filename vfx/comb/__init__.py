"""The comb autoencoder: shared encoder, per-persona decoders, progressive training (filled by the comb-model issue)."""
