"""Paddle Serving's ``paddle_serving_server`` names, for 2020 scripts (see ``pdserving.compat``)."""
