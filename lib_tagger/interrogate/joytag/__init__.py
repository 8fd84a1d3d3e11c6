"""The JoyTag interrogator: its ViT, config and loader."""
