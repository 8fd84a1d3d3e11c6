"""A faithful double of the WebUI's ``modules`` package (AUTOMATIC1111 1.10.1), written from the
host's source, for running whole txt2img/img2img jobs through our extension in tests."""
