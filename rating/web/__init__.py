"""The HTTP side of the server: payment gateway webhooks and payment orders.

Starlette routes served by uvicorn on the gRPC server's event loop
(`rating serve --http-port`). `rating.web.app.build_app(routes)` is the app;
other parts add their routes to the list.
"""
