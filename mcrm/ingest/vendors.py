"""The five vendor presets (registered on import of this module)."""
