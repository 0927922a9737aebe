"""The web service and web page (``agegender serve``; the ``serve`` extra: FastAPI, uvicorn, python-multipart).

A shell over the library: the inference core never imports from here. Nothing happens at import time;
:func:`agegender.serve.app.create_app` builds the app from :class:`agegender.serve.settings.ServeSettings`.
"""
