"""Python client of the UsageService (blocking).

```python
from rating.client.usage import UsageClient

with UsageClient("127.0.0.1:50051", token="k7-gate") as client:
    reply = client.use("gym-2026-05-04-0042", "F-101", "gym", source="card", reference="C-7781")
    print(reply.amount_minor, reply.balance_minor, reply.replayed)
```

A RatingClient with the usage calls added: the same channel, token, TLS,
deadlines and retries; every write carries its idempotency key, so a retry
of an unanswered call returns its first result.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from rating.client.calls import RatingClient
from rating.prepaid.records import table_bytes
from rating.v1 import rating_pb2, usage_pb2, usage_pb2_grpc

_CASH = rating_pb2.PAYMENT_METHOD_CASH


class UsageClient(RatingClient):
    def __init__(self, target: str, **kwargs):
        super().__init__(target, **kwargs)
        self.usage_stub = usage_pb2_grpc.UsageServiceStub(self.channel)

    def use(self, key: str, account_id: str, facility: str, *, quantity: str = "1", source: str = "card",
            reference: str = "") -> rating_pb2.MovementResponse:
        request = usage_pb2.UseRequest(idempotency_key=key, account_id=account_id, facility=facility,
                                       quantity=quantity, source=source, reference=reference)
        return self._call(self.usage_stub.Use, request, key=key)

    def park(self, events: pa.Table, *, visitor_method: rating_pb2.PaymentMethod = _CASH
             ) -> usage_pb2.ParkResponse:
        """A batch of events; a retry is safe (sessions move money once by their keys)."""
        data = table_bytes(events)
        request = usage_pb2.ParkRequest(events=data, visitor_method=visitor_method)
        return self._call(self.usage_stub.Park, request, key=f"park {hashlib.sha256(data).hexdigest()[:16]}")

    def renew_passes(self, on: str = "") -> usage_pb2.RenewPassesResponse:
        return self._call(self.usage_stub.RenewPasses, usage_pb2.RenewPassesRequest(on=on),
                          key=f"renew passes {on}")
