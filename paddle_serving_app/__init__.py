"""Paddle Serving's ``paddle_serving_app`` names, for 2020 scripts (see ``pdserving.compat``)."""
