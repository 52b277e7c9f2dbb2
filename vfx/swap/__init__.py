"""The per-frame face swap: crop, encode, decode, blend, paste back (filled by the swap issue)."""
