"""The Python client of the gRPC API: calls (`calls`), which failures are retried
with the same key (`retry`), and the rich status a failed call carries (`status`)."""

from rating.client.calls import AsyncRatingClient, ClientError, OutcomeUnknown, RatingClient, readings_bytes

__all__ = ["AsyncRatingClient", "ClientError", "OutcomeUnknown", "RatingClient", "readings_bytes"]
