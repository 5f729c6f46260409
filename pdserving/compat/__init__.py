"""The 2020 extension API (Paddle Serving 0.3/0.4) over pdserving, for scripts written against it.

PaddleOCR's 2020 ``deploy/pdserving`` scripts subclass ``WebService``, call the
``paddle_serving_app.reader`` ops and run models through ``Client`` or ``Debugger``; users were told
to copy and modify them. The top-level packages ``paddle_serving_client``, ``paddle_serving_app``,
``paddle_serving_server`` and ``paddle_serving_server_gpu`` re-export what is here under the
original names, so those scripts run unchanged: every step is pdserving's own (``pdserving.ops``,
the engines, the model server, the web layer with its limits and JSON errors).
"""
