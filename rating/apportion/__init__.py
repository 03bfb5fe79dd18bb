"""Shared-area apportionment: a group's common cost split over its members' weights
by the largest remainder, as charge lines of each member's account.

`largest_remainder` is the exact split; `plan` decides the splits of the
consumption about to be priced (`prepare`), reading it through `views`;
`lines` turns them into charge lines (`shared_area_lines`); `shapes` holds the
schemas and records they pass on."""

from rating.apportion.largest_remainder import split, split_amount
from rating.apportion.lines import shared_area_lines
from rating.apportion.plan import prepare

__all__ = ["prepare", "shared_area_lines", "split", "split_amount"]
