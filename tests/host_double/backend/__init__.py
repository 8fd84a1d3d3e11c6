"""Double of Forge's ``backend`` package (only what the extension touches: ``memory_management``)."""
