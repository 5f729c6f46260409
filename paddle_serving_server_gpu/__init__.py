"""Paddle Serving's ``paddle_serving_server_gpu`` names, for 2020 scripts: services that run on
the GPU unless told otherwise (see ``pdserving.compat``)."""
