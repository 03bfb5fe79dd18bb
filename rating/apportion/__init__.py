"""Shared-area apportionment: a group's common cost split over its members' weights
by the largest remainder, as charge lines of each member's account."""

from rating.apportion.shares import prepare, shared_area_lines, split, split_amount

__all__ = ["prepare", "shared_area_lines", "split", "split_amount"]
