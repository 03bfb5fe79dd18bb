"""The gRPC server (grpc.aio): a thin shell over rating.prepaid and rating.engine.

- settings.py      what the server runs with: flags, environment, a config file
- status.py        errors -> gRPC status codes with google.rpc-style details
- arrow_io.py      Arrow IPC bytes <-> tables, validated
- roles.py         the role, site and unit of a token, and what each role may call
- interceptors.py  bearer-token authentication, roles, the concurrency limit
- servicers.py     RatingService and PrepaidService handlers
- billing_servicer.py  BillingService handlers over rating.billing
- app.py           building, starting and draining the server (with the standard
                   grpc.health.v1 and reflection services); structured logs
"""
